"""The push path: follow the bot's event stream, keep the QR cache current the moment a QR
rotates (cleared on connect and logout), and fan the events out to the bridge's own SSE
subscribers. Reconnects to the bot with backoff when the stream breaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from typing import Any

import httpx

from waqr.backoff import Backoff
from waqr.bridge.botclient import BotClient
from waqr.bridge.cache import QrCache
from waqr.errors import BotError
from waqr.logs import log_event

log = logging.getLogger("waqr.bridge.relay")

# The bot's states in which a QR may be on offer; in every other state the cache is emptied.
QR_STATES = frozenset({"qr_ready", "pairing_code"})
# Events one subscriber may fall behind by; beyond it loses its oldest (never blocks the relay).
SUBSCRIBER_BACKLOG = 100

Event = tuple[str, dict[str, Any]]


class Subscription:
    """One listener's events, from the moment it is made: it registers in its constructor,
    not at its first iteration (as an async generator would), so a caller can subscribe,
    then read a snapshot, and miss nothing that happens in between.

    Iterate it for ``(type, data)`` pairs; :meth:`close` when done."""

    def __init__(self, registry: weakref.WeakSet[Subscription]) -> None:
        self._registry = registry
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=SUBSCRIBER_BACKLOG)
        registry.add(self)

    def put(self, event: Event) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(event)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

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
        self.connected = False
        # Held weakly as a safety net: a subscription dropped without close() (a response
        # whose stream never started) leaves with its last reference, not with the relay.
        self._subscribers: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._backoff = Backoff(0.5, 10.0)

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
            self.connected = False
            self.on_bot(None)
            await asyncio.sleep(self._backoff.next_delay())

    async def apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "qr":
            if data.get("qr") and data.get("expires_in"):
                await self.cache.put(str(data["qr"]), float(data["expires_in"]))
            else:
                await self.cache.clear()
        elif kind == "state" and data.get("status") not in QR_STATES:
            await self.cache.clear()
        if kind == "state":
            self.on_bot(str(data.get("status")))
        self.publish(kind, data)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        for subscription in list(self._subscribers):
            subscription.put((kind, data))

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """A new subscription, registered before this returns."""
        return Subscription(self._subscribers)
