"""When the engine fails to connect, the bot runs the doctor and its verdict (layer, cause,
fixes) appears in /status under lastDisconnectReason.diagnosis. Real bot, real engine, real
misbehaving proxies on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.procs import MisbehavingProxy, ServiceProcess, running_bot, wait_until

pytestmark = pytest.mark.timeout(120)

# Generous: the product promises 10 s; a shared machine gets far more room here.
WAIT = 60


def diagnosed(bot: ServiceProcess) -> dict[str, Any] | None:
    reason = bot.status()["lastDisconnectReason"] or {}
    diagnosis: dict[str, Any] | None = reason.get("diagnosis")
    return diagnosis


def test_a_proxy_refusing_connect_is_diagnosed_in_status(tmp_path: Path) -> None:
    reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    with (
        MisbehavingProxy(reply) as proxy,
        running_bot(tmp_path / "data", WA_PROXY=proxy.url) as bot,
    ):
        diagnosis = wait_until(lambda: diagnosed(bot), WAIT)
        reason = bot.status()["lastDisconnectReason"]
    assert reason["code"] == "connection_failure"
    assert diagnosis["healthy"] is False
    assert (diagnosis["layer"], diagnosis["cause"]) == ("proxy", "proxy_refused")
    assert "403 Forbidden" in diagnosis["detail"]
    assert diagnosis["fixes"]


def test_a_proxy_that_never_answers_is_diagnosed_in_status(tmp_path: Path) -> None:
    with (
        MisbehavingProxy(None) as proxy,
        running_bot(tmp_path / "data", WA_PROXY=proxy.url, WAQR_ENGINE_START_TIMEOUT="3") as bot,
    ):
        diagnosis = wait_until(lambda: diagnosed(bot), WAIT)
    assert (diagnosis["layer"], diagnosis["cause"]) == ("proxy", "proxy_no_answer")


def test_the_doctor_can_be_switched_off(tmp_path: Path) -> None:
    reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    with (
        MisbehavingProxy(reply) as proxy,
        running_bot(tmp_path / "data", WA_PROXY=proxy.url, WAQR_DOCTOR_ON_FAILURE="false") as bot,
    ):
        wait_until(
            lambda: (
                (bot.status()["lastDisconnectReason"] or {}).get("code") == "connection_failure"
            ),
            WAIT,
        )
        # Three engine attempts refused: a doctor run (milliseconds against this proxy) would
        # have attached its verdict by now.
        wait_until(lambda: len(proxy.requests) >= 3, WAIT)
        assert diagnosed(bot) is None
