"""Which WhatsApp Web version the engine announces, read from the engine's own Go library.

whatsmeow sends ``ClientPayload.UserAgent.AppVersion`` from a constant compiled into it
(``store.waVersion``, a ``WAVersionContainer`` of three uint32: primary, secondary, tertiary;
store/clientpayload.go); neonize 0.5.2 has no call that returns it (its ``GetVersion`` export
is neonize's own release). So it is read from the library file the engine child loads:

- the version triple from the ``.noptrdata`` section (Go's initialised data without pointers,
  where that array lives), found as the one ``[2, 3000, n]`` there. WhatsApp Web has been
  2.3000.x since 2024; any other count than one is reported as unknown, never guessed;
- whatsmeow's module version from ``.go.buildinfo`` (what ``go version -m`` prints).

Nothing here imports neonize: importing it loads the library and may try to download one.
``engine_version()`` is what ``/status`` and ``waqr doctor`` show.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from waqr.errors import EngineUnavailable

PACKAGE = "neonize"
# WhatsApp Web's primary and secondary version since 2024 (2.3000.x): the marker of the triple.
WA_WEB_PREFIX = (2, 3000)
WHATSMEOW_MODULE = "go.mau.fi/whatsmeow"
_BUILDINFO_MAGIC = b"\xff Go buildinf:"
_ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True, slots=True)
class EngineVersion:
    neonize: str
    whatsmeow: str | None  # the Go module version, e.g. v0.0.0-20260921121126-35ae40906e74
    whatsapp_web: str | None  # what the engine announces to WhatsApp, e.g. 2.3000.1047769893

    def describe(self) -> str:
        """One line naming the build, for reasons and the doctor."""
        web = self.whatsapp_web or "unknown"
        meow = f", whatsmeow {self.whatsmeow}" if self.whatsmeow else ""
        return f"WhatsApp Web {web} (neonize {self.neonize}{meow})"

    def as_json(self) -> dict[str, Any]:
        return {
            "whatsappWeb": self.whatsapp_web,
            "neonize": self.neonize,
            "whatsmeow": self.whatsmeow,
        }


def neonize_library() -> tuple[Path, str]:
    """The installed neonize's Go library for this machine and neonize's version, found
    without importing neonize. Raises EngineUnavailable when either is missing."""
    try:
        installed = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EngineUnavailable("neonize is not installed") from exc
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable("neonize package cannot be located")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return package_dir / f"neonize-linux-{arch}.so", installed


def _sections(lib: BinaryIO) -> dict[str, tuple[int, int]]:
    """ELF64 little-endian section name -> (file offset, size)."""
    header = lib.read(64)
    if header[:4] != _ELF_MAGIC or header[4] != 2 or header[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", header, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", header, 0x3A)
    lib.seek(shoff)
    table = lib.read(shentsize * shnum)
    entries = [struct.unpack_from("<IIQQQQ", table, i * shentsize) for i in range(shnum)]
    names_at, names_size = entries[shstrndx][4], entries[shstrndx][5]
    lib.seek(names_at)
    names = lib.read(names_size)
    found: dict[str, tuple[int, int]] = {}
    for name_at, _type, _flags, _addr, offset, size in entries:
        name = names[name_at : names.index(b"\0", name_at)].decode(errors="replace")
        found[name] = (offset, size)
    return found


def _read(lib: BinaryIO, where: tuple[int, int] | None) -> bytes:
    if where is None:
        return b""
    lib.seek(where[0])
    return lib.read(where[1])


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def module_version(buildinfo: bytes, module: str) -> str | None:
    """``module``'s version in a Go 1.18+ ``.go.buildinfo`` section (inline strings), following
    a ``=>`` replacement when there is one."""
    start = buildinfo.find(_BUILDINFO_MAGIC)
    if start < 0 or len(buildinfo) < start + 32 or not buildinfo[start + 15] & 0x2:
        return None
    try:
        length, at = _uvarint(buildinfo, start + 32)  # the Go version string
        length, at = _uvarint(buildinfo, at + length)  # the module info
    except IndexError:
        return None
    lines = buildinfo[at : at + length].decode(errors="replace").splitlines()
    for index, line in enumerate(lines):
        fields = line.split("\t")
        if fields[:2] == ["dep", module] and len(fields) > 2:
            following = lines[index + 1].split("\t") if index + 1 < len(lines) else []
            if following[:1] == ["=>"] and len(following) > 2:
                return following[2]
            return fields[2]
    return None


def wa_web_version(noptrdata: bytes) -> str | None:
    """The one 4-byte-aligned ``[2, 3000, n]`` uint32 triple in ``.noptrdata``, as text."""
    marker = struct.pack("<II", *WA_WEB_PREFIX)
    hits: list[int] = []
    at = noptrdata.find(marker)
    while at >= 0:
        if at % 4 == 0 and at + 12 <= len(noptrdata):
            hits.append(struct.unpack_from("<I", noptrdata, at + 8)[0])
        at = noptrdata.find(marker, at + 1)
    if len(hits) != 1 or hits[0] == 0:
        return None
    return ".".join(str(n) for n in (*WA_WEB_PREFIX, hits[0]))


def read_engine_version(library: Path, neonize: str) -> EngineVersion:
    """What the Go library at ``library`` announces; unknown parts are None. Raises OSError
    when the file cannot be read."""
    with library.open("rb") as lib:
        try:
            sections = _sections(lib)
        except (ValueError, struct.error, IndexError):
            return EngineVersion(neonize, None, None)
        web = wa_web_version(_read(lib, sections.get(".noptrdata")))
        meow = module_version(_read(lib, sections.get(".go.buildinfo")), WHATSMEOW_MODULE)
    return EngineVersion(neonize, meow, web)


@functools.cache
def engine_version() -> EngineVersion | None:
    """The installed engine's version (read once per process); None when there is no engine
    to read (neonize or its library missing: the engine then fails with its own reason)."""
    try:
        library, neonize = neonize_library()
        return read_engine_version(library, neonize)
    except (EngineUnavailable, OSError):
        return None
