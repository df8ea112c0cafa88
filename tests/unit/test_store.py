"""The session's files: atomic private writes, the exclusive lock, credential wiping."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from waqr.bot.store import SavedQr, SessionStore, write_private_file
from waqr.errors import DataDirLocked


def test_private_files_are_written_atomically_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "secret.json"
    write_private_file(target, b"one")
    write_private_file(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["secret.json"]  # no temp left


def test_unexpired_qr_is_restored_and_expired_one_removed(tmp_path: Path) -> None:
    store = SessionStore(tmp_path, "default")
    store.save_qr(SavedQr("code", time.time() + 30))
    assert store.load_qr() == SavedQr("code", pytest.approx(time.time() + 30, abs=2))
    store.save_qr(SavedQr("old", time.time() - 1))
    assert store.load_qr() is None
    assert not store.qr_path.exists()


def test_corrupt_qr_file_is_dropped(tmp_path: Path) -> None:
    store = SessionStore(tmp_path, "default")
    store.qr_path.write_text("{not json")
    assert store.load_qr() is None


def test_second_lock_on_the_same_dir_names_the_holder(tmp_path: Path) -> None:
    first = SessionStore(tmp_path, "default")
    first.lock()
    try:
        with pytest.raises(DataDirLocked) as caught:
            SessionStore(tmp_path, "default").lock()
        assert f"pid {os.getpid()}" in str(caught.value)
    finally:
        first.unlock()
    second = SessionStore(tmp_path, "default")
    second.lock()
    second.unlock()


def test_wipe_removes_the_store_and_its_journals(tmp_path: Path) -> None:
    store = SessionStore(tmp_path, "default")
    store.auth_dir.mkdir(parents=True)
    for path in store.credential_files():
        path.write_bytes(b"x")
    store.wipe_credentials()
    assert not any(p.exists() for p in store.credential_files())


def test_an_empty_database_is_not_credentials(tmp_path: Path) -> None:
    store = SessionStore(tmp_path, "default")
    store.auth_dir.mkdir(parents=True)
    store.db_path.write_bytes(b"")
    assert store.has_credentials() is False
