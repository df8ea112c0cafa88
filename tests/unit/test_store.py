"""The session's files: atomic private writes, the exclusive lock, credential wiping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from waqr.bot.store import SessionStore
from waqr.errors import DataDirLocked


def test_the_qr_file_of_older_releases_is_removed(tmp_path: Path) -> None:
    store = SessionStore(tmp_path, "default")
    store.legacy_qr_path.write_text('{"qr": "2@old", "expires_at": 0}')
    store.remove_leftovers()
    assert not store.legacy_qr_path.exists()
    store.remove_leftovers()  # nothing there: still fine


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
