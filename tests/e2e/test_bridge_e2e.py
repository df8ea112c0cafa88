"""The bridge in front of a real bot linking through the simulator, with a real Redis: the
cache holds exactly the engine's current QR for exactly its remaining life, and the bridge
rides out the bot being killed and restarted."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis

from tests.e2e.harness import SimThread, bot_on, current_qr, link, wait_status
from tests.integration.test_bridge import BEARER, running_bridge
from tests.procs import RedisServer, wait_until
from waqr.bridge.cache import QR_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_redis_follows_every_rotation_with_the_qrs_own_ttl(sim: SimThread, tmp_path: Path) -> None:
    sim.faults(refs=2)  # codes rotate every 20 s
    server = RedisServer(tmp_path / "redis").start()
    bot = bot_on(sim, tmp_path / "bot").start()
    try:
        with running_bridge(tmp_path / "api", bot.url, REDIS_URL=server.url) as api:
            store = redis.Redis.from_url(server.url, decode_responses=True)
            first = wait_until(
                lambda: (q := api.get("/admin/wa/qr", headers=BEARER).json())["qr"] and q, 30
            )
            assert first["source"] in ("push", "bot")  # push once the stream is followed
            assert store.get(QR_KEY) == first["qr"]
            ttl = store.pttl(QR_KEY) / 1000
            assert abs(ttl - first["expires_in"]) < 2
            # The push path updates Redis when the engine rotates, without anyone asking.
            rotated = wait_until(
                lambda: (code := store.get(QR_KEY)) and code != first["qr"] and code, 30
            )
            assert rotated == current_qr(bot)["qr"]
            assert store.pttl(QR_KEY) <= 20_000
            # A scan clears it: a linked session has no QR to serve.
            sim.scan(rotated)
            wait_status(bot, "connected", 30)
            wait_until(lambda: store.get(QR_KEY) is None, 10)
            body = api.get("/admin/wa/status", headers=BEARER).json()
            assert body["connected"] is True
            assert body["cache"] == "ok"
            store.close()
    finally:
        bot.stop()
        server.stop()


def test_the_bridge_rides_out_a_killed_and_restarted_bot(sim: SimThread, tmp_path: Path) -> None:
    bot = bot_on(sim, tmp_path / "bot").start()
    try:
        link(sim, bot)
        with running_bridge(tmp_path / "api", bot.url, KEEPALIVE_INTERVAL="0.5") as api:
            assert api.get("/admin/wa/status", headers=BEARER).json()["connected"] is True
            os.killpg(bot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            bot.proc.wait(10)  # type: ignore[union-attr]
            down = api.get("/admin/wa/status", headers=BEARER)
            assert down.status_code == 503
            assert down.json()["error"] == "bot_unreachable"
            bot.start()  # same port, same data: the link survives
            wait_until(lambda: api.get("/admin/wa/status", headers=BEARER).json()["connected"], 60)
            wait_until(
                lambda: api.get("/admin/wa/status", headers=BEARER).json()["bridge"][
                    "pushConnected"
                ],
                30,
            )
    finally:
        bot.stop()
