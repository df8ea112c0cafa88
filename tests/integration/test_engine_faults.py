"""The real bot process with the real neonize engine, pointed at misbehaving proxies on
loopback, and the real engine child driven directly through the simulator. Nothing here
reaches the internet: the engine's only route out is the proxy."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import SimThread, simulator
from tests.procs import MisbehavingProxy, process_alive, running_bot, wait_until
from waqr.engine import protocol as p
from waqr.engine.supervisor import ChildEngine

pytestmark = pytest.mark.timeout(90)


def test_proxy_refusing_connect_is_reported_with_its_answer(tmp_path: Path) -> None:
    reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    with (
        MisbehavingProxy(reply) as proxy,
        running_bot(tmp_path / "data", WA_PROXY=proxy.url) as bot,
    ):
        status = wait_until(
            lambda: (
                (s := bot.status())["status"] == "disconnected" and s["lastDisconnectReason"] and s
            ),
            30,
        )
        reason = status["lastDisconnectReason"]
        assert reason["code"] == "connection_failure"
        assert "Forbidden" in reason["detail"] or "403" in reason["detail"]
        assert "WA_PROXY" in reason["hint"]
        assert proxy.requests[0].startswith(b"CONNECT web.whatsapp.com:443")
        # It keeps retrying by itself, with backoff, through fresh engines.
        wait_until(lambda: bot.status()["engine"]["starts"] >= 2, 30)


def test_silent_proxy_ends_in_a_killed_engine_and_a_typed_reason(tmp_path: Path) -> None:
    with (
        MisbehavingProxy(None) as proxy,
        running_bot(tmp_path / "data", WA_PROXY=proxy.url, WAQR_ENGINE_START_TIMEOUT="3") as bot,
    ):
        first_pid = wait_until(lambda: bot.status()["engine"]["pid"], 20)
        status = wait_until(
            lambda: (
                (s := bot.status())["lastDisconnectReason"]
                and s["lastDisconnectReason"]["code"] == "connect_timeout"
                and s
            ),
            30,
        )
        assert status["status"] in ("disconnected", "connecting")
        assert "SIGKILL" in status["lastDisconnectReason"]["detail"]
        wait_until(lambda: not process_alive(first_pid), 10)
        assert bot.get("/health").json()["status"] == "ok"


def test_killed_engine_is_replaced_and_the_service_keeps_answering(tmp_path: Path) -> None:
    # A proxy that holds the line keeps the engine child alive (connecting) until we kill it.
    with (
        MisbehavingProxy(None) as proxy,
        running_bot(tmp_path / "data", WA_PROXY=proxy.url, WAQR_ENGINE_START_TIMEOUT="60") as bot,
    ):
        victim = wait_until(lambda: bot.status()["engine"]["pid"], 20)
        os.kill(victim, signal.SIGKILL)
        status = wait_until(
            lambda: (
                (s := bot.status())["lastDisconnectReason"]
                and s["lastDisconnectReason"]["code"] == "engine_crashed"
                and s
            ),
            20,
        )
        assert "SIGKILL" in status["lastDisconnectReason"]["detail"]
        replacement = wait_until(
            lambda: (pid := bot.status()["engine"]["pid"]) and pid != victim and pid, 30
        )
        assert process_alive(replacement)
        assert bot.get("/health").status_code == 200


def test_stopping_the_bot_leaves_no_engine_behind(tmp_path: Path) -> None:
    with MisbehavingProxy(None) as proxy:
        with running_bot(tmp_path / "data", WA_PROXY=proxy.url) as bot:
            pid = wait_until(lambda: bot.status()["engine"]["pid"], 20)
            # uvicorn re-raises SIGTERM after its graceful shutdown, hence -15.
            assert bot.stop() in (0, -signal.SIGTERM)
        logs = bot.logs()
        assert "Application shutdown complete" in logs
        assert '"event": "engine child ended"' in logs  # stopped in order, not orphaned
        wait_until(lambda: not process_alive(pid), 10)


def test_a_second_bot_on_the_same_data_dir_refuses_to_start(tmp_path: Path) -> None:
    with MisbehavingProxy(None) as proxy, running_bot(tmp_path / "data", WA_PROXY=proxy.url) as bot:
        env = {**os.environ, "WAQR_DATA_DIR": str(tmp_path / "data"), "WAQR_BOT_PORT": "1"}
        second = subprocess.run(
            [sys.executable, "-m", "waqr.cli", "bot"], env=env, capture_output=True, timeout=30
        )
        assert second.returncode == 2
        assert f"pid {bot.proc.pid}" in second.stderr.decode()  # type: ignore[union-attr]
        assert bot.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("WA_PROXY", "ftp://hidden-host:21", "scheme must be one of"),
        ("WA_PROXY", "http://hidden-host", "a port is required"),
        ("WAQR_BOT_PORT", "seventy", "valid integer"),
        ("WAQR_ENGINE_START_TIMEOUT", "-1", "greater than 0"),
    ],
)
def test_malformed_settings_stop_start_up_naming_the_variable(
    tmp_path: Path, name: str, value: str, says: str
) -> None:
    env = {**os.environ, "WAQR_DATA_DIR": str(tmp_path), name: value}
    result = subprocess.run(
        [sys.executable, "-m", "waqr.cli", "bot"], env=env, capture_output=True, timeout=30
    )
    assert result.returncode == 2
    message = result.stderr.decode()
    assert name in message
    assert says in message
    assert value not in message.replace(name, "")


def test_a_missing_engine_library_fails_loudly_instead_of_downloading(tmp_path: Path) -> None:
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("neonize")
    assert spec is not None and spec.submodule_search_locations
    broken = tmp_path / "site" / "neonize"
    shutil.copytree(
        next(iter(spec.submodule_search_locations)),
        broken,
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    with running_bot(tmp_path / "data", PYTHONPATH=str(broken.parent)) as bot:
        status = wait_until(lambda: (s := bot.status())["status"] == "failed" and s, 30)
        reason = status["lastDisconnectReason"]
        assert reason["code"] == "engine_unavailable"
        assert "neonize-linux" in reason["detail"]
        assert "download" not in bot.logs().lower().replace("never lets it download", "")


def test_proxy_credentials_never_reach_the_logs(tmp_path: Path) -> None:
    reply = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    with MisbehavingProxy(reply) as proxy:
        url = proxy.url.replace("http://", "http://alice:hunter2-secret@")
        with running_bot(tmp_path / "data", WA_PROXY=url) as bot:
            status = wait_until(lambda: (s := bot.status())["lastDisconnectReason"] and s, 30)
            assert "Proxy Authentication Required" in status["lastDisconnectReason"]["message"]
            assert "hunter2-secret" not in bot.logs()


# --- the engine child itself, through the simulator ------------------------------------------


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimThread]:
    with simulator(tmp_path / "sim") as running:
        yield running


def real_engine(sim: SimThread, store: Path) -> ChildEngine:
    env = sim.bot_env()
    return ChildEngine(
        p.EngineConfig(store_path=str(store), proxy=env["WA_PROXY"]),
        start_timeout=30,
        stop_timeout=5,
        env={**os.environ, **env},
    )


async def next_of(events: AsyncIterator[p.EngineEvent], kind: type[p.EngineEvent]) -> Any:
    async with asyncio.timeout(30):  # a hang guard
        async for event in events:
            if isinstance(event, kind):
                return event
            assert not isinstance(event, p.EngineExited), event
    raise AssertionError(f"events ended before {kind.__name__}")


async def stopped(engine: ChildEngine, events: AsyncIterator[p.EngineEvent]) -> p.EngineEvent:
    async with asyncio.timeout(30):  # a hang guard, not a timing assertion
        await engine.stop()
        return [event async for event in events][-1]


async def test_a_child_showing_a_qr_stops_by_itself_without_sigkill(
    sim: SimThread, tmp_path: Path
) -> None:
    engine = real_engine(sim, tmp_path / "wa.db")
    await engine.start()
    events = engine.events()
    try:
        qr = await next_of(events, p.QrIssued)
        assert qr.issued_at <= time.time()
        await engine.ping()  # answered under the child's FFI lock
        # Before the fix the child hung in asyncio.run()'s executor join and every stop
        # ended in stop_timeout + SIGKILL.
        assert await stopped(engine, events) == p.EngineExited(
            expected=True, reason="stopped", detail="exited with code 0"
        )
    finally:
        await engine.stop()
    assert engine.pid is not None and not process_alive(engine.pid)


async def test_a_linked_child_answers_ping_and_stops_by_itself(
    sim: SimThread, tmp_path: Path
) -> None:
    # The kind server: it lets the client close after the 515, so whatsmeow always logs in
    # (by default the simulator drops the socket at once, a race whatsmeow may lose; the
    # session's login deadline covers that, and it is not what this test is about).
    sim.faults(after_pair="linger")
    engine = real_engine(sim, tmp_path / "wa.db")
    await engine.start()
    events = engine.events()
    try:
        qr = await next_of(events, p.QrIssued)
        await asyncio.to_thread(sim.scan, qr.code)
        await next_of(events, p.Connected)
        await engine.ping()
        assert await stopped(engine, events) == p.EngineExited(
            expected=True, reason="stopped", detail="exited with code 0"
        )
    finally:
        await engine.stop()
