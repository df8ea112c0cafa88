"""The real bot process, its real neonize engine, and the WhatsApp simulator: linking."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import SimThread, bot_on, current_qr, link, wait_reason, wait_status
from tests.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_a_new_bot_offers_the_simulators_current_qr_and_follows_rotations(
    sim: SimThread, tmp_path: Path
) -> None:
    sim.faults(refs=2)  # not six: every code lives 20 s (whatsmeow qrchan.go)
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        wait_status(bot, "qr_ready", 30)
        first = current_qr(bot)
        assert first["qr"].startswith("https://wa.me/settings/linked_devices#")
        assert 15 < first["expires_in"] <= 20
        second = wait_until(
            lambda: (q := bot.get("/qr").json())["qr"] and q["qr"] != first["qr"] and q, 45
        )
        assert 15 < second["expires_in"] <= 20
        # Same device keys, new server ref: the ref is what rotates.
        assert first["qr"].split(",")[1:] == second["qr"].split(",")[1:]
        assert first["qr"].split(",")[0] != second["qr"].split(",")[0]
        # The rotated code is the one the simulator accepts.
        sim.scan(second["qr"])
        wait_status(bot, "connected", 30)
    finally:
        bot.stop()


def test_scan_links_and_a_restart_reconnects_without_a_new_qr(
    sim: SimThread, tmp_path: Path
) -> None:
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        device = link(sim, bot)
        status = bot.status()
        assert status["account"]["jid"].startswith(device["jid"].split(":")[0].split("@")[0])
        assert status["hasCredentials"] is True
        # Secrets stay out of the logs: the QR payload and the phone number.
        logs = bot.logs()
        assert "linked_devices#" not in logs
        assert device["jid"].split(":")[0] not in logs
    finally:
        bot.stop()
    restarted = bot_on(sim, tmp_path / "data").start()
    try:
        wait_status(restarted, "connected", 30)
        assert restarted.get("/qr").json()["qr"] is None
        assert '"event": "qr"' not in restarted.logs()
        assert "qr_ready" not in restarted.logs()
    finally:
        restarted.stop()


def test_a_dropped_connection_comes_back_by_itself_with_credentials_intact(
    sim: SimThread, tmp_path: Path
) -> None:
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        link(sim, bot)
        assert sim.faults(drop_linked_sessions=True)["affected_sessions"] == 1
        wait_reason(bot, "connection_lost", 30)
        wait_status(bot, "connected", 60)
        assert bot.status()["hasCredentials"] is True
        assert "qr_ready" not in bot.logs().split("connection_lost", 1)[1]
    finally:
        bot.stop()


def test_remote_logout_wipes_credentials_and_offers_a_fresh_qr(
    sim: SimThread, tmp_path: Path
) -> None:
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        device = link(sim, bot)
        sim.logout(device["jid"])
        status = wait_reason(bot, "logged_out", 30)
        assert status["hasCredentials"] is False
        wait_status(bot, "qr_ready", 30)
        assert (
            not (tmp_path / "data" / "wa-auth" / "default.db").exists()
            or not bot.status()["hasCredentials"]
        )
    finally:
        bot.stop()


def test_reset_and_logout_wipe_and_relink(sim: SimThread, tmp_path: Path) -> None:
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        link(sim, bot)
        assert bot.post("/reconnect", params={"reset": "true"}).status_code == 202
        status = wait_status(bot, "qr_ready", 30)
        assert status["hasCredentials"] is False
        assert sim.devices() == []  # the relink unlinked the old device at WhatsApp
        link(sim, bot)
        assert len(sim.devices()) == 1
        reply = bot.post("/logout")
        assert reply.status_code == 200
        assert reply.json()["unlinkedAtWhatsApp"] is True
        assert sim.devices() == []  # gone from the phone's Linked devices too
        status = wait_status(bot, "qr_ready", 30)
        assert status["lastDisconnectReason"]["code"] == "logout_requested"
        assert status["hasCredentials"] is False
    finally:
        bot.stop()


def test_twenty_overlapping_reconnects_cause_one_engine_restart(
    sim: SimThread, tmp_path: Path
) -> None:
    import concurrent.futures

    bot = bot_on(sim, tmp_path / "data").start()
    try:
        link(sim, bot)
        starts = bot.status()["engine"]["starts"]
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            replies = list(pool.map(lambda _: bot.post("/reconnect"), range(20)))
        assert {r.status_code for r in replies} == {202}
        assert sum(not r.json()["coalesced"] for r in replies) == 1
        wait_status(bot, "connected", 30)
        assert bot.status()["engine"]["starts"] == starts + 1
        assert bot.status()["hasCredentials"] is True
    finally:
        bot.stop()


def test_linking_with_a_pairing_code(sim: SimThread, tmp_path: Path) -> None:
    bot = bot_on(sim, tmp_path / "data").start()
    try:
        wait_status(bot, "qr_ready", 30)
        reply = bot.post("/pair-code", json={"phone": "+15550001111"})
        assert reply.status_code == 200, reply.text
        code = reply.json()["code"]
        assert len(code.replace("-", "")) == 8
        assert bot.status()["status"] == "pairing_code"
        sim.enter_code(code)
        wait_status(bot, "connected", 45)
    finally:
        bot.stop()
