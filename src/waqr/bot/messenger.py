"""A session's messaging: accepts sends into the durable outbox, sends them in order through
the linked engine, stores incoming messages before the engine may acknowledge them, records
receipts, and tells the session's subscribers (``message`` and ``receipt`` events).

One sender task per session owns the outbox queue; the session's engine pump calls
:meth:`Messenger.on_traffic` for every message and receipt and waits for it, so incoming
messages are stored in the order WhatsApp delivered them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any

from waqr.bot.messages import MessageStore, Outgoing, incoming_json, receipt_json
from waqr.bot.session import Session, Traffic
from waqr.bot.webhooks import WebhookSender
from waqr.engine import protocol as p
from waqr.errors import EngineCommandFailed, InvalidPhoneNumber, SendRefused
from waqr.logs import log_event
from waqr.phone import parse_e164
from waqr.tasks import cancel, spawn

log = logging.getLogger("waqr.messages")

# WhatsApp's own limit on a text message (its clients refuse longer ones).
MAX_TEXT = 65536
MAX_REPLY_TO = 128
RATE_WINDOW = 60.0
# A send that fails this many times while the session is linked is given up as failed
# (a number not on WhatsApp fails at once, every time).
MAX_ATTEMPTS = 3
# How often the sender looks again at queued sends while the session is not linked.
IDLE_CHECK = 1.0
# Session events a webhook may ask for (WAQR_WEBHOOK_EVENTS), besides message and receipt.
SESSION_EVENTS = frozenset({"state", "qr"})
_JID = re.compile(r"\d{5,20}@s\.whatsapp\.net|\d{5,20}(-\d{1,20})?@g\.us")


def recipient_jid(to: str) -> str:
    """``+E.164`` or a user/group JID as the JID to send to; SendRefused(422) otherwise."""
    to = to.strip()
    if _JID.fullmatch(to):
        return to
    if to.startswith("+"):
        try:
            return f"{parse_e164(to)}@s.whatsapp.net"
        except InvalidPhoneNumber as exc:
            raise SendRefused(422, "invalid_recipient", f"to: {exc}") from None
    raise SendRefused(
        422,
        "invalid_recipient",
        "to: use +<country code><number> (e.g. +4915112345678) or a JID such as "
        "4915112345678@s.whatsapp.net or <group id>@g.us",
    )


def check_text(text: str) -> None:
    if not text.strip():
        raise SendRefused(422, "empty_text", "text: must not be empty")
    if len(text) > MAX_TEXT:
        raise SendRefused(422, "text_too_long", f"text: {len(text)} characters; at most {MAX_TEXT}")


class SendRate:
    """At most ``limit`` sends accepted in any ``RATE_WINDOW`` seconds."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.accepted: collections.deque[float] = collections.deque()

    def retry_after(self) -> int | None:
        """Seconds until another send may be accepted, or None when one may be now."""
        now = self.clock()
        while self.accepted and self.accepted[0] <= now - RATE_WINDOW:
            self.accepted.popleft()
        if len(self.accepted) < self.limit:
            return None
        return max(1, math.ceil(self.accepted[0] + RATE_WINDOW - now))

    def note(self) -> None:
        self.accepted.append(self.clock())


class Messenger:
    def __init__(
        self,
        session: Session,
        store: MessageStore,
        *,
        rate_limit: int,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self.session = session
        self.store = store
        self.webhooks = webhooks
        self.rate = SendRate(rate_limit)
        self._accept_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._attempts: collections.Counter[str] = collections.Counter()
        self._sender: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        # Receipts that came before their send's id was stored (the engine's reply to
        # send_text and the first receipt race): applied once it is. Bounded.
        self._early: collections.OrderedDict[str, str] = collections.OrderedDict()

    async def start(self) -> None:
        self.session.traffic = self.on_traffic
        if self.webhooks is not None:
            self.webhooks.start()  # also what a crash left in the outbox
            if self.store.webhook_kinds & SESSION_EVENTS:
                self._watcher = spawn(self._watch_session(), name=f"hooks-{self.session.name}")
        self._sender = spawn(self._send_loop(), name=f"sender-{self.session.name}")

    async def close(self) -> None:
        await cancel(self._sender)
        await cancel(self._watcher)
        self.session.traffic = None
        if self.webhooks is not None:
            await self.webhooks.close()
        await asyncio.to_thread(self.store.close)

    # --- sends --------------------------------------------------------------------------------
    async def submit(
        self, to: str, text: str, reply_to: str | None, idempotency_key: str | None
    ) -> tuple[Outgoing, bool]:
        """Accept a send into the outbox: the send and True, or the earlier send made with
        ``idempotency_key`` and False. Raises SendRefused."""
        jid = recipient_jid(to)
        check_text(text)
        if reply_to is not None and not 0 < len(reply_to) <= MAX_REPLY_TO:
            raise SendRefused(422, "invalid_reply_to", f"reply_to: 1 to {MAX_REPLY_TO} characters")
        async with self._accept_lock:  # one accept at a time: the rate and the key hold
            if idempotency_key is not None:
                earlier = await asyncio.to_thread(self.store.by_key, idempotency_key)
                if earlier is not None:
                    return earlier, False
            state = self.session.state.value
            if self.session.linked_engine() is None:
                raise SendRefused(
                    409, "not_linked", f"the session is {state}, not connected", state=state
                )
            wait = self.rate.retry_after()
            if wait is not None:
                raise SendRefused(
                    429,
                    "rate_limited",
                    f"at most {self.rate.limit} sends a minute; retry in {wait} s",
                    retry_after=wait,
                )
            accepted, created = await asyncio.to_thread(
                self.store.accept, jid, text, reply_to, idempotency_key
            )
            if created:
                self.rate.note()
        self._wake.set()
        return accepted, created

    async def _watch_session(self) -> None:
        """The session's state changes and QR rotations, into the webhook outbox."""
        async for event in self.session.subscribe():
            if event["type"] in self.store.webhook_kinds:
                await asyncio.to_thread(self.store.queue_event, event["type"], event["data"])
                self._stored()

    def _stored(self) -> None:
        if self.webhooks is not None:
            self.webhooks.wake()

    async def failed_webhooks(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.failed_deliveries)

    async def replay_webhooks(self) -> int:
        count = await asyncio.to_thread(self.store.replay_failed)
        self._stored()
        return count

    async def get(self, message_id: str) -> Outgoing | None:
        return await asyncio.to_thread(self.store.get, message_id)

    async def inbox(self, after: int, limit: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.incoming_after, after, limit)

    async def _send_loop(self) -> None:
        while True:
            self._wake.clear()
            pending = await asyncio.to_thread(self.store.pending)
            for outgoing in pending:
                if not await self._send(outgoing):
                    break  # not linked, or the engine failed: wait, keep the order
            else:
                if pending:
                    continue  # more may have come in meanwhile
            timeout = IDLE_CHECK if pending else None
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _send(self, outgoing: Outgoing) -> bool:
        """Send one queued message; False when the outbox must wait."""
        engine = self.session.linked_engine()
        if engine is None:
            return False
        await asyncio.to_thread(self.store.mark, outgoing.id, "sending")
        try:
            wa_id = await engine.send_text(outgoing.recipient, outgoing.text, outgoing.reply_to)
        except EngineCommandFailed as exc:
            self._attempts[outgoing.id] += 1
            if self._attempts[outgoing.id] < MAX_ATTEMPTS:
                await asyncio.to_thread(self.store.mark, outgoing.id, "queued", error=str(exc))
                return False
            done = await asyncio.to_thread(self.store.mark, outgoing.id, "failed", error=str(exc))
            log_event(log, "send failed", level=logging.WARNING, message_id=outgoing.id)
        else:
            done = await asyncio.to_thread(self.store.note_sent, outgoing.id, wa_id)
            if (kind := self._early.pop(wa_id, None)) is not None:
                # A receipt that beat the engine's answer: "sent" is told first all the same.
                if done is not None:
                    self.session.publish("receipt", receipt_json(done))
                done = await asyncio.to_thread(self.store.note_receipt, wa_id, kind)
        self._attempts.pop(outgoing.id, None)
        if done is not None:
            self.session.publish("receipt", receipt_json(done))
            self._stored()
        return True

    # --- what the engine reports --------------------------------------------------------------
    async def on_traffic(self, engine: p.Engine, event: Traffic) -> None:
        """Store a message, then tell the engine it is stored; record a receipt. Never
        raises: the engine pump must go on."""
        try:
            if isinstance(event, p.MessageReceived):
                seq = await asyncio.to_thread(self.store.save_incoming, event)
                await engine.persisted(event.delivery)
                if seq is not None:  # None: WhatsApp delivered it again; told once
                    self.session.publish("message", incoming_json(seq, event))
                    self._stored()
            else:
                updated = await asyncio.to_thread(
                    self.store.note_receipt, event.message_id, event.kind
                )
                if updated is not None:
                    self.session.publish("receipt", receipt_json(updated))
                    self._stored()
                else:
                    self._early[event.message_id] = event.kind
                    while len(self._early) > 1000:
                        self._early.popitem(last=False)
        except Exception as exc:
            # Unstored: the engine's handler times out. (Whether WhatsApp delivers it again
            # depends on the engine holding its receipt, which neonize 0.5.2 does not.)
            log_event(
                log, "storing engine traffic failed", level=logging.ERROR, error=type(exc).__name__
            )
