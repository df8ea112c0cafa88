"""The QR cache on a real Redis server: the TTL is the QR's own remaining lifetime, a rotation
replaces it at once, connect and logout clear it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.procs import RedisServer
from waqr.bridge.cache import QR_KEY, QR_TS_KEY, MemoryQrCache, RedisQrCache
from waqr.bridge.relay import EventRelay

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
async def cache(redis_server: RedisServer) -> AsyncIterator[RedisQrCache]:
    cache = RedisQrCache(redis_server.url)
    yield cache
    await cache.close()


async def test_the_keys_live_exactly_as_long_as_the_qr(cache: RedisQrCache) -> None:
    await cache.put("code-1", 42.0)
    for key in (QR_KEY, QR_TS_KEY):
        ttl_ms = await cache.client.pttl(key)
        assert 41_000 < ttl_ms <= 42_000
    cached = await cache.get()
    assert cached is not None
    assert cached.code == "code-1"
    assert 41 < cached.expires_in() <= 42


async def test_an_expired_qr_is_never_served(cache: RedisQrCache) -> None:
    await cache.put("short-lived", 0.2)
    async with asyncio.timeout(5):
        while await cache.client.exists(QR_KEY):
            await asyncio.sleep(0.05)
    assert await cache.get() is None


async def test_a_rotation_replaces_the_qr_and_its_ttl(cache: RedisQrCache) -> None:
    await cache.put("first", 60.0)
    await cache.put("second", 20.0)
    cached = await cache.get()
    assert cached is not None
    assert cached.code == "second"
    assert cached.expires_in() <= 20.0


async def test_relay_follows_rotation_connect_and_logout(cache: RedisQrCache) -> None:
    relay = EventRelay(bot=None, cache=cache)  # type: ignore[arg-type]
    await relay.apply("qr", {"status": "qr_ready", "qr": "ref-A", "expires_in": 60})
    assert (await cache.get()).code == "ref-A"  # type: ignore[union-attr]
    await relay.apply("qr", {"status": "qr_ready", "qr": "ref-B", "expires_in": 20})
    assert (await cache.get()).code == "ref-B"  # type: ignore[union-attr]
    await relay.apply("state", {"status": "connected"})
    assert await cache.get() is None
    await relay.apply("qr", {"status": "qr_ready", "qr": "ref-C", "expires_in": 20})
    await relay.apply("state", {"status": "logged_out"})
    assert await cache.get() is None


async def test_a_dead_redis_degrades_and_a_live_one_recovers(
    cache: RedisQrCache, redis_server: RedisServer
) -> None:
    await cache.put("code", 30)
    assert await cache.health() == "ok"
    redis_server.stop()
    assert await cache.get() is None
    assert await cache.health() == "degraded"
    redis_server.start()
    await cache.put("code", 30)
    assert await cache.health() == "ok"
    assert (await cache.get()).code == "code"  # type: ignore[union-attr]


async def test_a_dead_redis_is_reported_without_waiting_for_a_cache_call(
    cache: RedisQrCache, redis_server: RedisServer
) -> None:
    assert await cache.health() == "ok"
    redis_server.stop()
    assert await cache.health() == "degraded"  # no get or put in between
    redis_server.start()
    assert await cache.health() == "ok"


async def test_the_embedded_cache_honours_the_same_lifetime() -> None:
    cache = MemoryQrCache()
    await cache.put("code", 0.05)
    assert (await cache.get()).code == "code"  # type: ignore[union-attr]
    await asyncio.sleep(0.1)
    assert await cache.get() is None
