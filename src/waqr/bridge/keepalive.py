"""The keepalive loop: every KEEPALIVE_INTERVAL seconds check the bot, nudge a disconnected
session to reconnect (never with reset: that would wipe a healthy link, the original
design's bug), and refresh the QR cache.

With several bridge replicas on one Redis only the holder of a lock key runs the loop; the
lock expires after two missed intervals, so a dead leader is replaced by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from waqr.bridge.botclient import BotClient
from waqr.bridge.cache import QrCache
from waqr.errors import BotError
from waqr.logs import log_event

log = logging.getLogger("waqr.bridge.keepalive")

LEADER_KEY = "wa:keepalive_leader"

# Extend the lock only if we still hold it (atomic compare-and-extend).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class LeaderLock:
    def __init__(self, client: redis.Redis, ttl: float) -> None:
        self.client = client
        self.ttl_ms = int(ttl * 1000)
        self.identity = uuid.uuid4().hex
        self._renew = client.register_script(_RENEW)

    async def hold(self) -> bool:
        """Take or keep the lock. False when another replica holds it (or Redis is down:
        then no replica can prove leadership, and the bot retries by itself anyway)."""
        try:
            if await self.client.set(LEADER_KEY, self.identity, nx=True, px=self.ttl_ms):
                return True
            return bool(await self._renew(keys=[LEADER_KEY], args=[self.identity, self.ttl_ms]))
        except RedisError:
            return False

    async def release(self) -> None:
        try:
            if await self.client.get(LEADER_KEY) == self.identity:
                await self.client.delete(LEADER_KEY)
        except RedisError:
            return


class Keepalive:
    def __init__(
        self, bot: BotClient, cache: QrCache, interval: float, leader: LeaderLock | None
    ) -> None:
        self.bot = bot
        self.cache = cache
        self.interval = interval
        self.leader = leader
        self.is_leader = leader is None
        self.last: dict[str, Any] = {}
        self.runs = 0

    async def run(self) -> None:
        # Ticks on a fixed schedule that does not drift with the time each tick takes.
        next_tick = time.monotonic()
        while True:
            await self.tick()
            next_tick += self.interval
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))

    async def tick(self) -> None:
        if self.leader is not None:
            self.is_leader = await self.leader.hold()
            if not self.is_leader:
                return
        self.runs += 1
        action = "none"
        try:
            await self.bot.health()
            status = await self.bot.status()
            state = status.get("status")
            if state == "disconnected":
                await self.bot.reconnect(reset=False)
                action = "reconnect"
            qr = await self.bot.qr(peek=True)
            if qr.get("qr") and qr.get("expires_in"):
                await self.cache.put(str(qr["qr"]), float(qr["expires_in"]))
            else:
                await self.cache.clear()
        except BotError as exc:
            state = "bot_unreachable"
            action = "none"
            log_event(log, "keepalive: bot check failed", level=logging.WARNING, error=str(exc))
        self.last = {"at": time.time(), "botStatus": state, "action": action}
        if action != "none":
            log_event(log, "keepalive", bot_status=state, action=action)
