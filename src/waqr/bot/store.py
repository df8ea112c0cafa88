"""A session's files under ``WAQR_DATA_DIR``: the engine's credential store and the exclusive
lock that keeps two engines off the same credentials.

Layout::

    <data_dir>/wa-auth/<session>.db (+ -wal, -shm)   whatsmeow's sqlite store (credentials)
    <data_dir>/wa-auth/<session>.lock                held (flock) while the service runs

Credentials are deleted only by :meth:`SessionStore.wipe_credentials`, which only logout,
relink (``reconnect?reset=true``) and WhatsApp's own logout call.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

# Re-exported (the `as` form tells mypy so): callers keep importing it from here.
from waqr.engine.store_probe import store_has_device as store_has_device
from waqr.errors import ConfigError, DataDirLocked


class SessionStore:
    def __init__(self, data_dir: Path, name: str) -> None:
        self.data_dir = data_dir
        self.name = name
        self.auth_dir = data_dir / "wa-auth"
        self.db_path = self.auth_dir / f"{name}.db"
        self.lock_path = self.auth_dir / f"{name}.lock"
        self.legacy_qr_path = data_dir / f"{name}.last_qr.json"
        self._lock_fd: int | None = None

    # --- the exclusive lock -----------------------------------------------------------------
    def lock(self) -> None:
        """Take the session's lock or raise DataDirLocked naming the holder; ConfigError
        naming the path when the data directory cannot be created or written."""
        try:
            # Owner-only from the start: the directory holds a linked account's credentials.
            # An existing data directory keeps its mode (it may be a mounted volume).
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.auth_dir.mkdir(exist_ok=True, mode=0o700)
            os.chmod(self.auth_dir, 0o700)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            # One line for the operator instead of a traceback (read-only volume, a file in
            # the way, no permission).
            raise ConfigError(
                f"WAQR_DATA_DIR {self.data_dir} cannot be used: {exc.strerror or exc} "
                f"({exc.filename or self.data_dir}); point it at a writable directory"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DataDirLocked(str(self.auth_dir), holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- credentials ----------------------------------------------------------------------
    def credential_files(self) -> list[Path]:
        return [self.db_path, *(Path(f"{self.db_path}{s}") for s in ("-wal", "-shm", "-journal"))]

    def has_credentials(self) -> bool:
        """True when the store holds a paired device (not merely an empty database)."""
        return store_has_device(self.db_path)

    def wipe_credentials(self) -> None:
        for path in self.credential_files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # --- files of older releases ------------------------------------------------------------
    def remove_leftovers(self) -> None:
        """Delete ``<session>.last_qr.json``, which releases before 0.2 wrote on every QR
        rotation; nothing reads it (a QR dies with the engine that offered it)."""
        with contextlib.suppress(FileNotFoundError):
            self.legacy_qr_path.unlink()
