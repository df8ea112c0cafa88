"""The QR cache: the current QR with a TTL equal to its own remaining lifetime, so an
expired or rotated QR is never served (the original design's fixed 120 s TTL outlived
WhatsApp's 20-60 s refs).

Redis keys, as in the original design: ``wa:last_qr`` (the payload) and ``wa:last_qr_ts``
(unix seconds it was cached), both with PX = remaining lifetime. Without ``REDIS_URL`` an
in-process cache serves. When Redis fails the cache reports ``degraded`` and answers
"nothing cached"; every call tries Redis again, so it recovers by itself. ``health()`` asks
Redis itself (a PING), so ``degraded`` is reported whenever Redis is unreachable, not only
after a cache call happened to fail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from waqr.logs import log_event

log = logging.getLogger("waqr.bridge.cache")

QR_KEY = "wa:last_qr"
QR_TS_KEY = "wa:last_qr_ts"


@dataclass(frozen=True, slots=True)
class CachedQr:
    code: str
    expires_at: float
    cached_at: float

    def expires_in(self, now: float | None = None) -> float:
        return max(0.0, self.expires_at - (time.time() if now is None else now))


class QrCache(Protocol):
    kind: str

    async def get(self) -> CachedQr | None: ...
    async def put(self, code: str, expires_in: float) -> None: ...
    async def clear(self) -> None: ...
    async def health(self) -> str: ...
    async def close(self) -> None: ...


class MemoryQrCache:
    kind = "memory"

    def __init__(self) -> None:
        self._entry: CachedQr | None = None

    async def get(self) -> CachedQr | None:
        entry = self._entry
        if entry is None or entry.expires_at <= time.time():
            self._entry = None
            return None
        return entry

    async def put(self, code: str, expires_in: float) -> None:
        now = time.time()
        self._entry = CachedQr(code, now + expires_in, now) if expires_in > 0 else None

    async def clear(self) -> None:
        self._entry = None

    async def health(self) -> str:
        return "memory"

    async def close(self) -> None:
        return None


class RedisQrCache:
    kind = "redis"

    def __init__(self, url: str) -> None:
        # Short timeouts: a dead Redis must cost a request milliseconds, not seconds.
        self.client: redis.Redis = redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True
        )
        self.degraded = False
        self._ping: asyncio.Future[None] | None = None

    def _ok(self) -> None:
        if self.degraded:
            log_event(log, "redis is back; cache recovered")
        self.degraded = False

    def _failed(self, exc: RedisError) -> None:
        if not self.degraded:
            log_event(log, "redis failed; cache degraded", level=logging.WARNING, error=str(exc))
        self.degraded = True

    async def get(self) -> CachedQr | None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                # Pipeline commands queue (they return the pipeline), execute() runs them.
                pipe.get(QR_KEY)
                pipe.get(QR_TS_KEY)
                pipe.pttl(QR_KEY)
                code, cached_at, ttl_ms = await pipe.execute()
        except RedisError as exc:
            self._failed(exc)
            return None
        self._ok()
        if code is None or ttl_ms is None or ttl_ms <= 0:
            return None
        now = time.time()
        return CachedQr(code, now + ttl_ms / 1000, float(cached_at or now))

    async def put(self, code: str, expires_in: float) -> None:
        ttl_ms = int(expires_in * 1000)
        try:
            if ttl_ms <= 0:
                await self.client.delete(QR_KEY, QR_TS_KEY)
            else:
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.set(QR_KEY, code, px=ttl_ms)
                    pipe.set(QR_TS_KEY, f"{time.time():.3f}", px=ttl_ms)
                    await pipe.execute()
        except RedisError as exc:
            self._failed(exc)
            return
        self._ok()

    async def clear(self) -> None:
        try:
            await self.client.delete(QR_KEY, QR_TS_KEY)
        except RedisError as exc:
            self._failed(exc)
            return
        self._ok()

    async def health(self) -> str:
        """``ok`` or ``degraded``, from a PING now (bounded by the 1 s socket timeouts).
        Requests that ask while a PING is on its way share it: under load, one round trip
        answers them all; a request that comes after it gets a PING of its own."""
        if self._ping is None or self._ping.done():
            self._ping = asyncio.ensure_future(self._check())
        await asyncio.shield(self._ping)
        return "degraded" if self.degraded else "ok"

    async def _check(self) -> None:
        try:
            await self.client.ping()
        except RedisError as exc:
            self._failed(exc)
        else:
            self._ok()

    async def close(self) -> None:
        await self.client.aclose()


def make_cache(redis_url: str | None) -> QrCache:
    return RedisQrCache(redis_url) if redis_url else MemoryQrCache()
