"""The bot's durable message store: ``<data_dir>/messages/<session>.sqlite`` (WAL, owner-only).

- ``inbox``: every incoming text, written (and committed) before the engine is told
  "persisted". Keyed by WhatsApp's message id, so a
  message WhatsApp delivers again after a crash is stored once.
- ``webhook_outbox``: one row per event and webhook URL, written in the same transaction as
  what it reports (``pending`` -> ``delivered``, or ``failed`` once its retry period ran out).
- ``outbox``: every send accepted with 202, with its idempotency key, its status
  (``queued`` -> ``sending`` -> ``sent`` or ``failed``), WhatsApp's message id once sent, and
  the latest receipt (``delivered``, ``read``, ``played``).

sqlite3 is blocking: the service calls these methods through ``asyncio.to_thread``; one
connection serves every thread, behind a lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
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
CREATE TABLE IF NOT EXISTS webhook_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    chat TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_pending ON webhook_outbox (url, status, chat, seq);
"""
# A receipt never moves a message backwards (a late "delivered" after "read").
_RECEIPT_RANK = {None: 0, "sent": 1, "delivered": 2, "read": 3, "played": 4}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook delivery waiting to go out."""

    seq: int
    event_id: str
    url: str
    chat: str
    body: str
    attempts: int
    next_at: float
    created_at: float


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
    """``webhook_urls``: where each stored event is also queued for delivery; ``webhook_kinds``:
    which event types (``message``, ``receipt``) are."""

    def __init__(
        self,
        path: Path,
        *,
        webhook_urls: tuple[str, ...] = (),
        webhook_kinds: frozenset[str] = frozenset(),
    ) -> None:
        self.webhook_urls = webhook_urls
        self.webhook_kinds = webhook_kinds
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
        """Store ``message`` (and its webhook deliveries, in one transaction); its sequence
        number, or None if it was stored before."""
        with self._lock, self._transaction():
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
            if cursor.rowcount != 1 or cursor.lastrowid is None:
                return None
            seq = cursor.lastrowid
            self._queue_webhooks("message", message.chat, incoming_json(seq, message))
            return seq

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
        with self._lock, self._transaction():
            found = self._find("wa_id", wa_id)
            if found is None:
                return None
            if _RECEIPT_RANK.get(kind, 0) > _RECEIPT_RANK.get(found.receipt, 0):
                self._db.execute(
                    "UPDATE outbox SET receipt = ?, updated_at = ? WHERE id = ?",
                    (kind, time.time(), found.id),
                )
                updated = self._find("id", found.id)
                assert updated is not None
                self._queue_webhooks("receipt", found.recipient, receipt_json(updated))
                return updated
            return found

    def note_sent(self, message_id: str, wa_id: str) -> Outgoing | None:
        """The engine sent ``message_id`` as WhatsApp's ``wa_id``: the first receipt."""
        with self._lock, self._transaction():
            self._db.execute(
                "UPDATE outbox SET status = 'sent', wa_id = ?, error = NULL, updated_at = ?"
                " WHERE id = ?",
                (wa_id, time.time(), message_id),
            )
            sent = self._find("id", message_id)
            if sent is not None:
                self._queue_webhooks("receipt", sent.recipient, receipt_json(sent))
            return sent

    # --- webhook outbox ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _queue_webhooks(self, kind: str, chat: str, data: dict[str, Any]) -> None:
        if kind not in self.webhook_kinds:
            return
        now = time.time()
        event_id = f"evt_{uuid.uuid4().hex}"
        body = json.dumps(
            {"id": event_id, "type": kind, "createdAt": now, "data": data}, ensure_ascii=False
        )
        for url in self.webhook_urls:
            self._db.execute(
                "INSERT INTO webhook_outbox (event_id, url, chat, body, status, attempts,"
                " next_at, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
                (event_id, url, chat, body, now, now),
            )

    def queue_event(self, kind: str, data: dict[str, Any]) -> None:
        """Queue a session event (``state``, ``qr``) for the webhooks: one lane of its own."""
        with self._lock, self._transaction():
            self._queue_webhooks(kind, "", data)

    def due_deliveries(self, url: str) -> list[Delivery]:
        """For each chat, its oldest pending delivery to ``url`` (a chat's later events wait
        behind it: in order per chat), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, url, chat, body, attempts, next_at, created_at"
                " FROM webhook_outbox WHERE seq IN (SELECT min(seq) FROM webhook_outbox"
                " WHERE url = ? AND status = 'pending' GROUP BY chat) ORDER BY seq",
                (url,),
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def delivered(self, seq: int) -> None:
        with self._lock:
            self._db.execute("UPDATE webhook_outbox SET status = 'delivered' WHERE seq = ?", (seq,))

    def delivery_failed(self, seq: int, error: str, *, retry_at: float | None) -> None:
        """A failed attempt: retried at ``retry_at``, or given up (``failed``) when None."""
        with self._lock:
            self._db.execute(
                "UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?,"
                " next_at = coalesce(?, next_at), status = ? WHERE seq = ?",
                (error, retry_at, "pending" if retry_at is not None else "failed", seq),
            )

    def failed_deliveries(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, url, attempts, last_error, created_at, body"
                " FROM webhook_outbox WHERE status = 'failed' ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            {
                "eventId": event_id,
                "url": url,
                "attempts": attempts,
                "lastError": error,
                "createdAt": created,
                "type": json.loads(body)["type"],
            }
            for event_id, url, attempts, error, created, body in rows
        ]

    def replay_failed(self) -> int:
        """Queue every failed delivery again (from now, attempts reset); how many."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_at = ?,"
                " created_at = ? WHERE status = 'failed'",
                (time.time(), time.time()),
            )
            return cursor.rowcount

    def _find(self, column: str, value: str) -> Outgoing | None:
        # ``column`` is one of three literals above, never input.
        row = self._db.execute(f"SELECT * FROM outbox WHERE {column} = ?", (value,)).fetchone()  # noqa: S608
        return _outgoing(row) if row is not None else None


def receipt_json(outgoing: Outgoing) -> dict[str, Any]:
    body = outgoing.as_json()
    return {key: body[key] for key in ("id", "to", "status", "waMessageId", "receipt", "error")}


def _outgoing(row: tuple[Any, ...]) -> Outgoing:
    # The columns in table order, without seq and idempotency_key.
    return Outgoing(row[1], *row[3:])
