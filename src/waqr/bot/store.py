"""A session's files under ``WAQR_DATA_DIR``: the engine's credential store, the last QR, and
the exclusive lock that keeps two engines off the same credentials.

Layout::

    <data_dir>/wa-auth/<session>.db (+ -wal, -shm)   whatsmeow's sqlite store (credentials)
    <data_dir>/wa-auth/<session>.lock                held (flock) while the service runs
    <data_dir>/<session>.last_qr.json                last QR shown, mode 0600, atomic

Credentials are deleted only by :meth:`SessionStore.wipe_credentials`, which only logout,
relink (``reconnect?reset=true``) and WhatsApp's own logout call.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Re-exported (the `as` form tells mypy so): callers keep importing it from here.
from waqr.engine.store_probe import store_has_device as store_has_device
from waqr.errors import DataDirLocked


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True, slots=True)
class SavedQr:
    code: str
    expires_at: float  # unix seconds


class SessionStore:
    def __init__(self, data_dir: Path, name: str) -> None:
        self.data_dir = data_dir
        self.name = name
        self.auth_dir = data_dir / "wa-auth"
        self.db_path = self.auth_dir / f"{name}.db"
        self.lock_path = self.auth_dir / f"{name}.lock"
        self.qr_path = data_dir / f"{name}.last_qr.json"
        self._lock_fd: int | None = None

    # --- the exclusive lock -----------------------------------------------------------------
    def lock(self) -> None:
        """Take the session's lock or raise DataDirLocked naming the holder."""
        self.auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.auth_dir, 0o700)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
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

    # --- last QR ----------------------------------------------------------------------------
    def save_qr(self, qr: SavedQr | None) -> None:
        if qr is None:
            with contextlib.suppress(FileNotFoundError):
                self.qr_path.unlink()
            return
        body = json.dumps({"qr": qr.code, "expires_at": qr.expires_at}).encode()
        write_private_file(self.qr_path, body)

    def load_qr(self) -> SavedQr | None:
        """The saved QR if it is still unexpired; an expired or unreadable one is removed."""
        try:
            body = json.loads(self.qr_path.read_bytes())
            saved = SavedQr(code=str(body["qr"]), expires_at=float(body["expires_at"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, OSError):
            self.save_qr(None)
            return None
        if saved.expires_at <= time.time():
            self.save_qr(None)
            return None
        return saved
