"""Patching neonize's trusted Noise root: a private copy, the installed package untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from waqr.sim.rootkey import (
    WHATSAPP_ROOT_KEY,
    NeonizePackage,
    RootKeyPatchError,
    go_library,
    installed_neonize,
    patched_neonize,
)

pytestmark = pytest.mark.timeout(60)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_package(tmp_path: Path, library: bytes) -> NeonizePackage:
    directory = tmp_path / "site" / "neonize"
    directory.mkdir(parents=True)
    (directory / "__init__.py").write_text("")
    (directory / "neonize-linux-amd64.so").write_bytes(library)
    return NeonizePackage(directory, "9.9.9")


def test_the_copy_trusts_the_new_key_where_whatsapps_was(tmp_path: Path) -> None:
    installed = installed_neonize()
    original = go_library(installed.directory)
    before = digest(original)
    new_key = os.urandom(32)

    folder = patched_neonize(new_key, tmp_path)

    patched = (folder / "neonize" / original.name).read_bytes()
    original_bytes = original.read_bytes()
    assert original_bytes.count(WHATSAPP_ROOT_KEY) == 1
    assert patched.count(WHATSAPP_ROOT_KEY) == 0
    assert patched.count(new_key) == 1
    assert patched.index(new_key) == original_bytes.index(WHATSAPP_ROOT_KEY) == 0x1197520  # doc §1
    assert len(patched) == len(original_bytes)
    assert digest(original) == before  # the installed package is only ever read
    assert (folder / "neonize" / "proto").is_dir()


def test_the_same_key_reuses_the_copy_and_another_key_gets_its_own(tmp_path: Path) -> None:
    key = os.urandom(32)
    first = patched_neonize(key, tmp_path)
    library = go_library(first / "neonize")
    stamp = library.stat().st_mtime_ns
    assert patched_neonize(key, tmp_path) == first
    assert library.stat().st_mtime_ns == stamp

    other = patched_neonize(os.urandom(32), tmp_path)
    assert other != first
    assert installed_neonize().version in other.name


def test_the_patched_library_still_loads_and_reports_its_version(tmp_path: Path) -> None:
    """A child process finds neonize in the copy and the Go library answers GetVersion.

    neonize's own loader only compares that answer with its version (doc §1), so an unchanged
    answer means it will use the copy instead of trying to download another library. The
    library is loaded with ctypes, not through neonize, so nothing could ever go online.
    """
    folder = patched_neonize(os.urandom(32), tmp_path)
    script = (
        "import ctypes, importlib.util, pathlib\n"
        "spec = importlib.util.find_spec('neonize')\n"
        "folder = pathlib.Path(next(iter(spec.submodule_search_locations)))\n"
        "lib = ctypes.CDLL(str(folder / 'neonize-linux-amd64.so'))\n"
        "lib.GetVersion.restype = ctypes.c_char_p\n"
        "print(folder)\n"
        "print(lib.GetVersion().decode())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(folder))
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    found, version = result.stdout.split()
    assert Path(found) == folder / "neonize"
    assert version == installed_neonize().version


@pytest.mark.parametrize("count", [0, 2])
def test_a_library_without_exactly_one_root_key_fails_loudly(tmp_path: Path, count: int) -> None:
    source = fake_package(tmp_path, b"\x7fELF" + (WHATSAPP_ROOT_KEY + b"\0" * 8) * count)
    with pytest.raises(RootKeyPatchError, match=rf"neonize 9\.9\.9: .* occurs {count} times"):
        patched_neonize(os.urandom(32), tmp_path / "work", source=source)
    leftovers = list((tmp_path / "work" / "neonize-patched").iterdir())
    assert leftovers == []  # no half-made copy is left to be mistaken for a good one


def test_a_fake_package_with_one_key_is_patched(tmp_path: Path) -> None:
    library = b"head" + WHATSAPP_ROOT_KEY + b"tail"
    source = fake_package(tmp_path, library)
    key = bytes(range(32))
    folder = patched_neonize(key, tmp_path / "work", source=source)
    assert (folder / "neonize" / "neonize-linux-amd64.so").read_bytes() == b"head" + key + b"tail"
    assert (source.directory / "neonize-linux-amd64.so").read_bytes() == library


def test_a_root_key_must_be_32_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        patched_neonize(b"short", tmp_path)
