"""The bot's durable message store: ``<data_dir>/messages/<session>.sqlite`` (WAL, owner-only).

- ``inbox``: every incoming text, written (and committed) before the engine is told
  "persisted" and lets WhatsApp's acknowledgement go. Keyed by WhatsApp's message id, so a
  message WhatsApp delivers again after a crash is stored once.
- ``outbox``: every send accepted with 202, with its idempotency key, its status
  (``queued`` -> ``sending`` -> ``sent`` or ``failed``), WhatsApp's message id once sent, and
  the latest receipt (``delivered``, ``read``, ``played``).

sqlite3 is blocking: the service calls these methods through ``asyncio.to_thread``; one
connection serves every thread, behind a lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waqr.engine.protocol import MessageReceived

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    chat TEXT NOT NULL,
    sender TEXT NOT NULL,
    push_name TEXT NOT NULL,
    text TEXT NOT NULL,
    timestamp REAL NOT NULL,
    quoted_id TEXT,
    from_me INTEGER NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT UNIQUE,
    recipient TEXT NOT NULL,
    text TEXT NOT NULL,
    reply_to TEXT,
    status TEXT NOT NULL,
    wa_id TEXT,
    receipt TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_wa_id ON outbox (wa_id);
"""
# A receipt never moves a message backwards (a late "delivered" after "read").
_RECEIPT_RANK = {None: 0, "sent": 1, "delivered": 2, "read": 3, "played": 4}


@dataclass(frozen=True, slots=True)
class Outgoing:
    id: str
    recipient: str
    text: str
    reply_to: str | None
    status: str
    wa_id: str | None
    receipt: str | None
    error: str | None
    created_at: float
    updated_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "to": self.recipient,
            "status": self.status,
            "waMessageId": self.wa_id,
            "receipt": self.receipt or ("sent" if self.status == "sent" else None),
            "error": self.error,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


def incoming_json(seq: int, message: MessageReceived) -> dict[str, Any]:
    return {
        "seq": seq,
        "id": message.id,
        "chat": message.chat,
        "sender": message.sender,
        "pushName": message.push_name,
        "text": message.text,
        "timestamp": message.timestamp,
        "quotedId": message.quoted_id,
        "fromMe": message.from_me,
    }


class MessageStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Owner-only from the first byte: the file holds conversations and phone numbers.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before "persisted" goes to the engine.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- inbox --------------------------------------------------------------------------------
    def save_incoming(self, message: MessageReceived) -> int | None:
        """Store ``message``; its sequence number, or None if it was stored before."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO inbox (id, chat, sender, push_name, text, timestamp,"
                " quoted_id, from_me, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.id,
                    message.chat,
                    message.sender,
                    message.push_name,
                    message.text,
                    message.timestamp,
                    message.quoted_id,
                    int(message.from_me),
                    time.time(),
                ),
            )
            return cursor.lastrowid if cursor.rowcount == 1 else None

    def incoming_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, chat, sender, push_name, text, timestamp, quoted_id, from_me"
                " FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [
            incoming_json(
                seq, MessageReceived(mid, chat, sender, name, text, ts, quoted, bool(mine), 0)
            )
            for seq, mid, chat, sender, name, text, ts, quoted, mine in rows
        ]

    # --- outbox -------------------------------------------------------------------------------
    def accept(
        self, recipient: str, text: str, reply_to: str | None, idempotency_key: str | None
    ) -> tuple[Outgoing, bool]:
        """Queue a send; returns it and True, or the earlier send with this key and False."""
        with self._lock:
            if idempotency_key is not None:
                earlier = self._find("idempotency_key", idempotency_key)
                if earlier is not None:
                    return earlier, False
            now = time.time()
            message_id = f"msg_{uuid.uuid4().hex}"
            self._db.execute(
                "INSERT INTO outbox (id, idempotency_key, recipient, text, reply_to, status,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                (message_id, idempotency_key, recipient, text, reply_to, now, now),
            )
            accepted = self._find("id", message_id)
        assert accepted is not None
        return accepted, True

    def by_key(self, idempotency_key: str) -> Outgoing | None:
        with self._lock:
            return self._find("idempotency_key", idempotency_key)

    def get(self, message_id: str) -> Outgoing | None:
        with self._lock:
            return self._find("id", message_id)

    def pending(self) -> list[Outgoing]:
        """Sends not yet done, oldest first. ``sending`` ones were cut off by a crash: they are
        sent again (at least once; whatsmeow picks the id, so a resend cannot be deduplicated)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE status IN ('queued', 'sending') ORDER BY seq"
            ).fetchall()
        return [_outgoing(row) for row in rows]

    def mark(
        self, message_id: str, status: str, *, wa_id: str | None = None, error: str | None = None
    ) -> Outgoing | None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET status = ?, wa_id = coalesce(?, wa_id), error = ?,"
                " updated_at = ? WHERE id = ?",
                (status, wa_id, error, time.time(), message_id),
            )
            return self._find("id", message_id)

    def note_receipt(self, wa_id: str, kind: str) -> Outgoing | None:
        """Record a receipt on the send WhatsApp knows as ``wa_id``; the send, if it is ours."""
        with self._lock:
            found = self._find("wa_id", wa_id)
            if found is None:
                return None
            if _RECEIPT_RANK.get(kind, 0) > _RECEIPT_RANK.get(found.receipt, 0):
                self._db.execute(
                    "UPDATE outbox SET receipt = ?, updated_at = ? WHERE id = ?",
                    (kind, time.time(), found.id),
                )
            return self._find("id", found.id)

    def _find(self, column: str, value: str) -> Outgoing | None:
        # ``column`` is one of three literals above, never input.
        row = self._db.execute(f"SELECT * FROM outbox WHERE {column} = ?", (value,)).fetchone()  # noqa: S608
        return _outgoing(row) if row is not None else None


def _outgoing(row: tuple[Any, ...]) -> Outgoing:
    # The columns in table order, without seq and idempotency_key.
    return Outgoing(row[1], *row[3:])
