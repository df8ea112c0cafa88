"""Two clients on one credential set, a phone that removes the device, and the WhatsApp Web
version the engine announces, with the real engine against the simulator."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.harness import SimThread, bot_on, link, running_on, wait_reason, wait_status
from tests.procs import ServiceProcess, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_one_replaced_stream_reconnects_with_the_same_credentials(
    sim: SimThread, tmp_path: Path
) -> None:
    with running_on(sim, tmp_path / "data") as bot:
        link(sim, bot)
        sim.faults(stream_error={"conflict": "replaced", "now": True})
        status = wait_reason(bot, "stream_replaced", 30)
        # The node as WhatsApp sent it, read by the engine itself.
        assert '<conflict type="replaced"/>' in status["lastDisconnectReason"]["detail"]
        status = wait_status(bot, "connected", 60)
        assert status["hasCredentials"] is True  # replaced is not a logout
        assert len(sim.devices()) == 1  # the same link, not a new one


@pytest.mark.timeout(240)
def test_two_bots_on_one_credential_set_stop_fighting_and_one_stays(
    sim: SimThread, tmp_path: Path
) -> None:
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    with running_on(sim, first_dir) as first:
        link(sim, first)
    # A copy of the data directory (a restored backup, a second container on a copied
    # volume): the data-directory lock cannot see it.
    shutil.copytree(first_dir, second_dir, ignore=shutil.ignore_patterns("*.lock", "*.log"))
    first, second = bot_on(sim, first_dir), bot_on(sim, second_dir)
    first.start()
    try:
        wait_status(first, "connected", 30)
        second.start()

        def settled() -> tuple[ServiceProcess, ServiceProcess] | None:
            states = {first.status()["status"], second.status()["status"]}
            if states != {"connected", "failed"}:
                return None
            if first.status()["status"] == "connected":
                return first, second
            return second, first

        survivor, loser = wait_until(settled, 150, interval=1)
        failed = loser.status()
        reason = failed["lastDisconnectReason"]
        assert reason["code"] == "replaced_repeatedly"
        assert "Two clients hold the same credentials" in reason["message"]
        assert failed["hasCredentials"] is True
        assert failed["retrying"] is False
        # The fight is over: the loser starts no engine, the survivor is not replaced again
        # (a loser still reconnecting would have replaced it within its 4 s backoff cap).
        starts = survivor.status()["engine"]["starts"]
        time.sleep(10)
        assert survivor.status()["status"] == "connected"
        assert survivor.status()["engine"]["starts"] == starts
        assert loser.status()["engine"]["starts"] == failed["engine"]["starts"]
    finally:
        second.stop()
        first.stop()


def test_a_phone_that_removes_the_device_is_recorded_with_whatsapps_node(
    sim: SimThread, tmp_path: Path
) -> None:
    with running_on(sim, tmp_path / "data") as bot:
        device = link(sim, bot)
        sim.logout(device["jid"])
        status = wait_reason(bot, "logged_out", 30)
        detail = status["lastDisconnectReason"]["detail"]
        node = '<stream:error code="401"><conflict type="device_removed"/></stream:error>'
        assert f"node: {node}" in detail
        assert "s after linking" in detail
        assert "through WA_PROXY" in detail  # the harness routes the engine through the proxy
        assert device["jid"].split(":")[0].split("@")[0] not in detail  # no phone number


def test_status_shows_the_whatsapp_web_version_the_engine_announces(
    sim: SimThread, tmp_path: Path
) -> None:
    with running_on(sim, tmp_path / "data") as bot:
        link(sim, bot)
        version = bot.status()["engine"]["version"]
        # Read from the engine's library by the bot; seen on the wire by the simulator.
        [device] = sim.devices()
        assert version["whatsappWeb"] == device["app_version"]
        assert version["whatsappWeb"].startswith("2.3000.")
        assert version["neonize"] and version["whatsmeow"]
