"""The push path: follow the bot's event stream, keep the QR cache current the moment a QR
rotates (cleared on connect and logout), and fan the events out to the bridge's own SSE
subscribers. Reconnects to the bot with backoff when the stream breaks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
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


class EventRelay:
    def __init__(self, bot: BotClient, cache: QrCache) -> None:
        self.bot = bot
        self.cache = cache
        self.connected = False
        self._subscribers: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
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
            await asyncio.sleep(self._backoff.next_delay())

    async def apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "qr":
            if data.get("qr") and data.get("expires_in"):
                await self.cache.put(str(data["qr"]), float(data["expires_in"]))
            else:
                await self.cache.clear()
        elif kind == "state" and data.get("status") not in QR_STATES:
            await self.cache.clear()
        self.publish(kind, data)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait((kind, data))

    async def subscribe(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=100)
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)
