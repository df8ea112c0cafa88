"""The push path: follow the bot's event stream, hold what it said (the bot's status and
live QR, which the bridge answers from while the stream is up), fan the events (and the
``message`` and ``receipt`` events, passed on as they are) out to the
bridge's own SSE subscribers, and keep the QR cache current the moment a QR rotates (cleared
on connect and logout). Reconnects to the bot with backoff when the stream breaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import httpx

from waqr.backoff import Backoff
from waqr.bot.states import no_qr_answer
from waqr.bridge.botclient import BotClient
from waqr.bridge.cache import QrCache
from waqr.errors import BotError
from waqr.logs import log_event

log = logging.getLogger("waqr.bridge.relay")

# The bot's states in which a QR may be on offer; in every other state the cache is emptied.
QR_STATES = frozenset({"qr_ready", "pairing_code"})
# Events one subscriber may fall behind by; beyond it loses its oldest (never blocks the relay).
SUBSCRIBER_BACKLOG = 100

# How long past a pushed code's expiry a reader waits for the bot's next push before it asks
# the bot (the push normally comes within milliseconds).
ROTATION_WAIT = 1.0

# The bot's messaging events: relayed to subscribers as they are.
MESSAGE_EVENTS = frozenset({"message", "receipt"})

Event = tuple[str, dict[str, Any]]
_END: Event = ("end", {})  # queued by Subscription.end(); never sent to a listener


class Subscription:
    """One listener's events, from the moment it is made: it registers in its constructor,
    not at its first iteration (as an async generator would), so a caller can subscribe,
    then read a snapshot, and miss nothing that happens in between.

    Iterate it for ``(type, data)`` pairs; :meth:`close` when done. It ends by itself
    when the relay loses the bot (:meth:`end`): what it would say next is unknown."""

    def __init__(self, registry: weakref.WeakSet[Subscription]) -> None:
        self._registry = registry
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=SUBSCRIBER_BACKLOG)
        registry.add(self)

    def end(self) -> None:
        """No more events: the listener has what was queued, then the iteration stops."""
        self._registry.discard(self)
        self.put(_END)

    def put(self, event: Event) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(event)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        event = await self._queue.get()
        if event is _END:
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        self._registry.discard(self)


class EventRelay:
    def __init__(
        self,
        bot: BotClient,
        cache: QrCache,
        on_bot: Callable[[str | None], None] = lambda _state: None,
    ) -> None:
        self.bot = bot
        self.cache = cache
        self.on_bot = on_bot  # told the bot's state on each state event, None when lost
        # What the stream said last: the bot's status, and its QR with the monotonic instant
        # it expires. The bot pushes every change of its status, so while the stream is up
        # these are what the bot would answer (the QR's countdown is computed when asked).
        self._status: dict[str, Any] | None = None
        self._qr: tuple[dict[str, Any], float] | None = None
        self.connected = False
        # Held weakly as a safety net: a subscription dropped without close() (a response
        # whose stream never started) leaves with its last reference, not with the relay.
        self._subscribers: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._backoff = Backoff(0.5, 10.0)
        # Set (and replaced) at every state or QR event: what a reader waiting for the next
        # code after one ran out waits on.
        self._pushed = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                async for kind, data in self.bot.events():
                    if not self.connected:
                        log_event(log, "following the bot's events")
                    self.connected = True
                    self._backoff.reset()
                    await self.apply(kind, data)
            except (BotError, httpx.HTTPError, ValueError) as exc:
                if self.connected:
                    log_event(log, "bot event stream lost", level=logging.WARNING, error=str(exc))
            was_connected, self.connected = self.connected, False
            self._status = self._qr = None
            self.on_bot(None)
            if was_connected:
                # Listeners must not go on showing the last state of a bot that is gone: their
                # streams end, and they learn the bot's fate from /admin/wa/status (503).
                for subscription in list(self._subscribers):
                    subscription.end()
            await asyncio.sleep(self._backoff.next_delay())

    async def apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind in MESSAGE_EVENTS:  # passed on; they change nothing the bridge holds
            self.publish(kind, data)
            return
        # Held and published first: subscribers never wait for the Redis write.
        live_qr = kind == "qr" and bool(data.get("qr")) and bool(data.get("expires_in"))
        if kind == "qr":
            self._qr = (data, time.monotonic() + float(data["expires_in"])) if live_qr else None
        elif kind == "state":
            self._status = data
            if data.get("status") not in QR_STATES:
                self._qr = None
            self.on_bot(str(data.get("status")))
        self.publish(kind, data)
        self._pushed.set()
        self._pushed = asyncio.Event()
        if live_qr:
            await self.cache.put(str(data["qr"]), float(data["expires_in"]))
        elif kind == "qr" or data.get("status") not in QR_STATES:
            await self.cache.clear()

    def live_qr(self) -> dict[str, Any] | None:
        """The QR the bot pushed last, with its remaining lifetime now; None when there is
        none, it has run out, or the stream is down (then only the bot can say)."""
        if not self.connected or self._qr is None:
            return None
        payload, expires_at = self._qr
        left = expires_at - time.monotonic()
        if left <= 0:
            return None
        return {**payload, "expires_in": round(left, 1)}

    def pushed_qr(self) -> dict[str, Any] | None:
        """``GET /qr``'s answer from what the bot pushed: its live QR, or, in a state without
        codes, what the bot answers then. None while the stream is down, and while a code
        has run out in a linking state: the bot may hold the next one already (its expiry,
        rounded to 0.1 s, and the push's travel time make this side's clock the later one),
        so only the next push or the bot can say (:meth:`next_code`)."""
        live = self.live_qr()
        if live is not None:
            return live
        if not self.connected or self._status is None:
            return None
        state = str(self._status.get("status"))
        if state in QR_STATES and self._qr is not None:
            return None
        return no_qr_answer(state)

    async def next_code(self) -> dict[str, Any] | None:
        """After a pushed code ran out in a linking state: wait for the bot's next push, at
        most until ROTATION_WAIT past that code's expiry (whatsmeow hands out the next code
        the moment one expires; a batch that ended sends none), then answer from it; None
        when nothing came (ask the bot)."""
        if self._qr is None:
            return self.pushed_qr()
        left = self._qr[1] + ROTATION_WAIT - time.monotonic()
        if left > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pushed.wait(), left)
        return self.pushed_qr()  # still None if no new code came in time: the bot's word

    def pushed_status(self) -> dict[str, Any] | None:
        """The bot's status as last pushed, its QR countdown computed now; None while the
        stream is down."""
        if not self.connected or self._status is None:
            return None
        status = dict(self._status)
        if isinstance(status.get("qr"), dict):
            live = self.live_qr()
            status["qr"] = {
                "available": live is not None,
                "expiresIn": live["expires_in"] if live else None,
            }
        return status

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        for subscription in list(self._subscribers):
            subscription.put((kind, data))

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """A new subscription, registered before this returns."""
        return Subscription(self._subscribers)
