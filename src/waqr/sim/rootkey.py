"""A copy of the installed neonize whose Go library trusts the simulator's Noise root key.

whatsmeow pins WhatsApp's Noise certificate root as a 32-byte constant; in the neonize 0.5.2
library it occurs exactly once (doc §1), and overwriting it is the only change the client needs.
The installed package is never touched: the whole package directory is copied, the copy's library
is patched, and the folder holding the copy is returned for the front of ``PYTHONPATH``.

Copies are cached by (neonize version, key) under ``<work_dir>/neonize-patched``, so a second call
with the same key is a directory lookup. Any other count of the original key than one (a new
neonize release, a stripped or already patched library) fails loudly with ``RootKeyPatchError``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Final, NamedTuple

from waqr.waproto.certchain import WHATSAPP_ROOT_KEY

KEY_SIZE: Final = 32
PACKAGE: Final = "neonize"
COMPLETE_MARKER: Final = ".waqr-patched"

_lock = threading.Lock()


class RootKeyPatchError(Exception):
    """The installed neonize cannot be patched the way the simulator expects."""


class NeonizePackage(NamedTuple):
    directory: Path  # the ``neonize`` package folder
    version: str


def installed_neonize() -> NeonizePackage:
    """The installed package and its version, found without importing neonize.

    Importing neonize loads its Go library (and may try to download a fresh one).
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RootKeyPatchError("neonize is not installed")
    directory = Path(next(iter(spec.submodule_search_locations)))
    return NeonizePackage(directory, importlib.metadata.version(PACKAGE))


def go_library(package_dir: Path) -> Path:
    """The package's Go shared library (``neonize-<os>-<arch>.so`` and the like)."""
    candidates = sorted(
        path
        for path in package_dir.glob(f"{PACKAGE}-*")
        if path.suffix in {".so", ".dylib", ".dll"} and path.is_file()
    )
    if len(candidates) != 1:
        raise RootKeyPatchError(
            f"expected one Go library in {package_dir}, found {[p.name for p in candidates]}"
        )
    return candidates[0]


def patched_neonize(
    root_key: bytes, work_dir: Path, *, source: NeonizePackage | None = None
) -> Path:
    """A folder whose ``neonize`` package trusts ``root_key``; put it first on ``PYTHONPATH``.

    ``source`` defaults to the installed neonize.
    """
    if len(root_key) != KEY_SIZE:
        raise ValueError(f"a Noise root key is {KEY_SIZE} bytes, got {len(root_key)}")
    package_dir, version = source or installed_neonize()
    cache_root = work_dir / "neonize-patched"
    # The key is public (it is in the client), but a short digest keeps the path readable.
    target = cache_root / f"{version}-{hashlib.sha256(root_key).hexdigest()[:16]}"
    with _lock:
        if (target / COMPLETE_MARKER).is_file():
            return target
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_root, prefix=".staging-"))
        try:
            copy = staging / PACKAGE
            # copytree copies file contents: the installed files (often hard links into the
            # uv cache) are only ever read.
            shutil.copytree(package_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
            _replace_root_key(go_library(copy), root_key, version)
            (staging / COMPLETE_MARKER).write_text(f"{version}\n{root_key.hex()}\n")
            if target.exists():  # an unfinished copy from a crashed run
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def _replace_root_key(library: Path, root_key: bytes, version: str) -> None:
    data = library.read_bytes()
    count = data.count(WHATSAPP_ROOT_KEY)
    if count != 1:
        raise RootKeyPatchError(
            f"neonize {version}: WhatsApp's Noise root key occurs {count} times in "
            f"{library.name}, expected exactly 1; the simulator cannot patch this build"
        )
    offset = data.index(WHATSAPP_ROOT_KEY)
    with library.open("r+b") as out:
        out.seek(offset)
        out.write(root_key)
