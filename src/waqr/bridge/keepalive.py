"""The keepalive loop: every KEEPALIVE_INTERVAL seconds check the bot, nudge a session that
is disconnected and will not act by itself (never with reset: that would wipe a healthy link,
the original design's bug), and refresh the QR cache.

The bot retries on its own schedule (backoff, and whatsmeow's reconnect grace); a nudge
during that wait would reset the backoff and defeat it, so :func:`should_nudge` reads the
bot's own ``retrying`` and ``nextRetryAt`` first. The keepalive is the safety net for a bot
that has stopped trying, not a second retry schedule.

With several bridge replicas on one Redis only the holder of a lock key runs the loop; the
lock expires after two missed intervals, so a dead leader is replaced by itself. While Redis
cannot be reached nobody can hold the lock, so every replica runs the loop without it (and
says so once): a redundant nudge is coalesced by the bot, a keepalive that stops is not
noticed by anyone.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from waqr.bridge.botclient import BotClient
from waqr.bridge.cache import QrCache
from waqr.errors import BotError
from waqr.logs import log_event

log = logging.getLogger("waqr.bridge.keepalive")

LEADER_KEY = "wa:keepalive_leader"

# How long past its own announced retry time a disconnected bot gets before the keepalive
# nudges it: the bot acts a moment after the deadline, and the two clocks may differ a little.
NUDGE_GRACE = 5.0


def parse_instant(value: object) -> float | None:
    """The bot's ISO-8601 UTC instant (``2026-11-26T17:00:00.000Z``) as epoch seconds; None
    for null or anything unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:  # the bot speaks UTC; an offset-less instant is UTC too
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def should_nudge(status: Mapping[str, Any], *, now: float, grace: float = NUDGE_GRACE) -> bool:
    """Whether the keepalive should POST /reconnect, given the bot's GET /status body and the
    wall-clock time ``now`` (epoch seconds).

    Nudged is only a ``disconnected`` bot that is not ``retrying`` (no retry scheduled, not
    inside the engine's reconnect grace) and whose ``nextRetryAt`` is null or more than
    ``grace`` seconds past. An older bot without ``retrying`` is judged by ``nextRetryAt``
    alone. An unreadable ``nextRetryAt`` counts as null: the nudge is what gets a stuck bot
    going again, and the bot coalesces a redundant one.
    """
    if status.get("status") != "disconnected" or status.get("retrying") is True:
        return False
    retry_at = parse_instant(status.get("nextRetryAt"))
    return retry_at is None or now - retry_at > grace


# Extend the lock only if we still hold it (atomic compare-and-extend).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class Lock(enum.StrEnum):
    """Where this replica stands with the leader lock after its last attempt."""

    HELD = "held"
    OTHER = "held_by_another"  # another replica runs the loop
    UNAVAILABLE = "redis_unreachable"  # nobody can hold it: run without it
    NONE = "none"  # no Redis configured: a single replica, no lock


class LeaderLock:
    def __init__(self, client: redis.Redis, ttl: float) -> None:
        self.client = client
        self.ttl_ms = int(ttl * 1000)
        self.identity = uuid.uuid4().hex
        self._renew = client.register_script(_RENEW)

    async def hold(self) -> Lock:
        """Take or keep the lock: HELD, OTHER when another replica holds it, UNAVAILABLE when
        Redis cannot be reached (then no replica can prove leadership)."""
        try:
            if await self.client.set(LEADER_KEY, self.identity, nx=True, px=self.ttl_ms):
                return Lock.HELD
            renewed = await self._renew(keys=[LEADER_KEY], args=[self.identity, self.ttl_ms])
        except RedisError:
            return Lock.UNAVAILABLE
        return Lock.HELD if renewed else Lock.OTHER

    async def release(self) -> None:
        try:
            if await self.client.get(LEADER_KEY) == self.identity:
                await self.client.delete(LEADER_KEY)
        except RedisError:
            return


class Keepalive:
    def __init__(
        self,
        bot: BotClient,
        cache: QrCache,
        interval: float,
        leader: LeaderLock | None,
        on_bot: Callable[[str | None], None] = lambda _state: None,
    ) -> None:
        self.on_bot = on_bot  # told the bot's state after each check, None when unreachable
        self.bot = bot
        self.cache = cache
        self.interval = interval
        self.leader = leader
        self.is_leader = leader is None
        self.lock = Lock.NONE
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
            lock = await self.leader.hold()
            if (lock is Lock.UNAVAILABLE) != (self.lock is Lock.UNAVAILABLE):
                if lock is Lock.UNAVAILABLE:
                    log_event(
                        log,
                        "keepalive: redis unreachable; running without the leader lock",
                        level=logging.WARNING,
                    )
                else:
                    log_event(log, "keepalive: redis is back; leader lock in use again")
            self.lock = lock
            # Without Redis nobody can hold the lock: run rather than let every replica stop.
            self.is_leader = lock is not Lock.OTHER
            if not self.is_leader:
                return
        self.runs += 1
        action = "none"
        try:
            await self.bot.health()
            status = await self.bot.status()
            state = status.get("status")
            self.on_bot(str(state))
            if should_nudge(status, now=time.time()):
                await self.bot.reconnect(reset=False)
                action = "reconnect"
                log_event(
                    log,
                    "keepalive",
                    bot_status=state,
                    action=action,
                    retrying=status.get("retrying"),
                    next_retry_at=status.get("nextRetryAt"),
                )
            qr = await self.bot.qr(peek=True)
            if qr.get("qr") and qr.get("expires_in"):
                await self.cache.put(str(qr["qr"]), float(qr["expires_in"]))
            else:
                await self.cache.clear()
        except BotError as exc:
            state = "bot_unreachable"
            self.on_bot(None)
            log_event(log, "keepalive: bot check failed", level=logging.WARNING, error=str(exc))
        self.last = {"at": time.time(), "botStatus": state, "action": action}
