"""Every scripted fault of the simulator reaches the bot's status as the documented state and
reason code: network faults at the front door, refusals at login, errors on a live stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import SimThread, bot_on, link, wait_reason, wait_status
from waqr.sim.frontdoor import FrontDoorFault

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (FrontDoorFault.REFUSE_TCP, "refused the TCP connection"),
        (FrontDoorFault.PROXY_FORBIDDEN, "refused the connection: Forbidden"),
        (FrontDoorFault.UNTRUSTED_TLS, "intercepting TLS"),
        (FrontDoorFault.WS_FORBIDDEN, "rejected the WebSocket upgrade"),
        (FrontDoorFault.CLOSE_AFTER_CONNECT, ""),
    ],
)
def test_network_faults_are_connection_failures_that_name_the_layer(
    sim: SimThread, tmp_path: Path, fault: FrontDoorFault, says: str
) -> None:
    sim.set_front_door_fault(fault)
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        status = wait_reason(bot, "connection_failure", 30)
        assert status["status"] in ("disconnected", "connecting")
        assert says in status["lastDisconnectReason"]["message"]
        assert status["lastDisconnectReason"]["hint"]
        # The network heals: the bot gets there by itself.
        sim.set_front_door_fault(FrontDoorFault.NONE)
        wait_status(bot, "qr_ready", 90)
    finally:
        bot.stop()


def test_silence_after_client_hello_ends_in_a_killed_engine(sim: SimThread, tmp_path: Path) -> None:
    sim.set_front_door_fault(FrontDoorFault.SILENT_AFTER_CLIENT_HELLO)
    bot = bot_on(sim, tmp_path / "data", WAQR_ENGINE_START_TIMEOUT="4").start()
    try:
        status = wait_reason(bot, "connect_timeout", 30)
        assert "SIGKILL" in status["lastDisconnectReason"]["detail"]
    finally:
        bot.stop()


def test_the_socks5_route_links_too(sim: SimThread, tmp_path: Path) -> None:
    bot = bot_on(sim, tmp_path / "data", WA_PROXY=sim.bot_env("socks5")["WA_PROXY"]).start()
    try:
        link(sim, bot)
    finally:
        bot.stop()


@pytest.mark.parametrize(
    ("failure", "state", "code"),
    [
        ({"reason": 401}, "qr_ready", "logged_out"),
        ({"reason": 403}, "failed", "main_device_gone"),
        ({"reason": 406}, "failed", "unknown_logout"),
        ({"reason": 405}, "failed", "client_outdated"),
        ({"reason": 402, "code": 101, "expire": 3600}, "failed", "temp_banned"),
        ({"reason": 409, "message": "bad ua"}, "failed", "bad_user_agent"),
    ],
)
def test_login_refusals_reach_the_documented_state(
    sim: SimThread, tmp_path: Path, failure: dict, state: str, code: str
) -> None:
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        link(sim, bot)
        sim.faults(failure={**failure, "on": "login"})
        sim.faults(drop_linked_sessions=True)  # the engine logs in again and is refused
        status = wait_reason(bot, code, 45)
        status = wait_status(bot, state, 45)
        assert status["lastDisconnectReason"]["code"] == code
        assert status["lastDisconnectReason"]["hint"]
        if state == "failed":
            # No loop against a refusal: the engine is not restarted by itself.
            starts = status["engine"]["starts"]
            assert bot.status()["engine"]["starts"] == starts
    finally:
        bot.stop()


def test_an_outdated_client_is_refused_before_linking(sim: SimThread, tmp_path: Path) -> None:
    sim.faults(failure={"reason": 405, "on": "registration"})
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        status = wait_status(bot, "failed", 30)
        reason = status["lastDisconnectReason"]
        assert reason["code"] == "client_outdated"
        assert "newer engine" in reason["hint"]
        # The reason names the build WhatsApp refused: the version this engine announces.
        announced = status["engine"]["version"]["whatsappWeb"]
        assert announced and f"WhatsApp Web {announced}" in reason["message"]
    finally:
        bot.stop()


def test_a_stream_error_reconnects_by_itself(sim: SimThread, tmp_path: Path) -> None:
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        link(sim, bot)
        sim.faults(stream_error={"code": 503, "now": True})
        wait_status(bot, "connected", 60)
        assert bot.status()["hasCredentials"] is True
    finally:
        bot.stop()


def test_a_503_refusal_is_named_and_retried_until_it_passes(sim: SimThread, tmp_path: Path) -> None:
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        link(sim, bot)
        sim.faults(failure={"reason": 503, "on": "login", "times": 2})
        sim.faults(drop_linked_sessions=True)
        status = wait_reason(bot, "server_unavailable", 45)
        assert "503" in status["lastDisconnectReason"]["detail"]
        wait_status(bot, "connected", 90)
        assert bot.status()["hasCredentials"] is True
    finally:
        bot.stop()
