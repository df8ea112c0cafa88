"""The session owns the clock, proven with the real engine against a simulator that behaves
like WhatsApp where it hurts: silence when a QR batch runs out, a socket dropped right after
515, 503 refusals, a hung or killed engine, requests that race, and seeded chaos. Every test
watches the bot: no state may outlive its deadline and /health must stay 200."""

from __future__ import annotations

import concurrent.futures
import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import SimThread, current_qr, link, running_on, wait_reason, wait_status
from tests.e2e.liveness import DeadlineWatch, link_patiently
from tests.procs import process_alive, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_an_unscanned_batch_that_runs_out_silently_brings_a_new_one_for_someone_waiting(
    sim: SimThread, tmp_path: Path
) -> None:
    sim.faults(refs=1)  # one code of 20 s, then whatsmeow hangs up without a word
    with running_on(sim, tmp_path / "data") as bot:
        with DeadlineWatch(bot) as watch:
            first = current_qr(bot)["qr"]  # asking for it: someone is waiting
            renewed = wait_until(
                lambda: (q := bot.get("/qr").json()["qr"]) and q != first and q, 60, interval=1
            )
            status = bot.status()
        assert status["status"] == "qr_ready"
        assert "qr_batch_exhausted" in watch.reasons()
        assert status["engine"]["starts"] == 2
        assert watch.violations == []
        sim.scan(renewed)  # the new batch is live at WhatsApp
        wait_status(bot, "connected", 30)


def test_an_unscanned_batch_with_nobody_waiting_rests_until_someone_asks(
    sim: SimThread, tmp_path: Path
) -> None:
    sim.faults(refs=1)
    with running_on(sim, tmp_path / "data") as bot:
        with DeadlineWatch(bot) as watch:
            wait_status(bot, "qr_ready", 30)  # /status is not a person asking for the QR
            status = wait_status(bot, "qr_timeout", 60)
            assert status["lastDisconnectReason"]["code"] == "qr_timeout"
            assert status["retrying"] is False
            assert bot.get("/qr").json()["status"] == "qr_timeout"  # ...and now someone asks
            current_qr(bot)
        assert watch.violations == []
        assert bot.status()["engine"]["starts"] == 2


def test_a_login_whatsmeow_never_redials_after_the_515_is_recovered_by_the_deadline(
    sim: SimThread, tmp_path: Path
) -> None:
    sim.faults(after_pair="close_without_515")  # the close wins the race against the 515
    with running_on(sim, tmp_path / "data") as bot:
        with DeadlineWatch(bot) as watch:
            sim.scan(current_qr(bot)["qr"])
            status = wait_status(bot, "connected", 45)
        assert "login_stalled" in watch.reasons()
        assert status["hasCredentials"] is True
        assert len(sim.devices()) == 1  # the same link, not a new one
        assert watch.violations == []


@pytest.mark.timeout(420)
def test_twenty_consecutive_pairings_never_hang(sim: SimThread, tmp_path: Path) -> None:
    with running_on(sim, tmp_path / "data") as bot:
        with DeadlineWatch(bot) as watch:
            for _ in range(20):
                sim.scan(current_qr(bot)["qr"])
                wait_status(bot, "connected", 30)
                assert bot.post("/reconnect", params={"reset": "true"}).status_code == 202
                wait_until(lambda: bot.status()["status"] in ("qr_ready", "starting"), 30)
        assert watch.violations == []
        assert sim.devices() == []  # every relink unlinked its device at WhatsApp


def test_503_refusals_keep_their_reason_and_the_bots_backoff(
    sim: SimThread, tmp_path: Path
) -> None:
    with running_on(sim, tmp_path / "data") as bot:
        link(sim, bot)
        starts = bot.status()["engine"]["starts"]
        sim.faults(failure={"reason": 503, "on": "login", "times": 3})
        with DeadlineWatch(bot) as watch:
            sim.faults(drop_linked_sessions=True)
            status = wait_reason(bot, "server_unavailable", 45)
            assert "503" in status["lastDisconnectReason"]["detail"]
            wait_status(bot, "connected", 90)
        assert "connect_timeout" not in watch.reasons()
        # The bot stops an engine at its first 503 and starts the next after its own
        # backoff: at most one engine per refused login.
        assert 1 <= bot.status()["engine"]["starts"] - starts <= 3
        assert bot.status()["hasCredentials"] is True
        assert watch.violations == []


def test_an_engine_hung_after_its_first_qr_is_found_by_its_ping_and_replaced(
    sim: SimThread, tmp_path: Path
) -> None:
    env = {"WAQR_ENGINE_PING_INTERVAL": "2", "WAQR_ENGINE_COMMAND_TIMEOUT": "3"}
    with running_on(sim, tmp_path / "data", **env) as bot:
        wait_status(bot, "qr_ready", 30)
        hung = bot.status()["engine"]["pid"]
        os.kill(hung, signal.SIGSTOP)
        with DeadlineWatch(bot) as watch:
            wait_reason(bot, "engine_unresponsive", 40)
            wait_until(lambda: not process_alive(hung), 20)
            current_qr(bot)
        assert bot.status()["engine"]["pid"] != hung
        assert watch.violations == []


def test_an_engine_killed_while_logging_in_after_the_scan_still_ends_linked(
    sim: SimThread, tmp_path: Path
) -> None:
    with running_on(sim, tmp_path / "data") as bot:
        qr = current_qr(bot)["qr"]
        pid = bot.status()["engine"]["pid"]
        with DeadlineWatch(bot) as watch:
            sim.scan(qr)  # the phone is linked; the engine is restarting its stream now
            os.kill(pid, signal.SIGKILL)
            status = wait_status(bot, "connected", 45)
        assert status["hasCredentials"] is True
        assert status["engine"]["pid"] != pid
        assert len(sim.devices()) == 1
        assert watch.violations == []


def test_a_reconnect_racing_a_pairing_code_never_leaves_a_dead_code_on_screen(
    sim: SimThread, tmp_path: Path
) -> None:
    with running_on(sim, tmp_path / "data") as bot:
        wait_status(bot, "qr_ready", 30)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pairing = pool.submit(bot.post, "/pair-code", json={"phone": "+15550001111"})
            reconnect = pool.submit(bot.post, "/reconnect")
            code_reply, reconnect_reply = pairing.result(), reconnect.result()
        assert code_reply.status_code == 200, code_reply.text
        assert reconnect_reply.status_code == 202
        code = code_reply.json()["code"]
        status = wait_until(
            lambda: (s := bot.status())["status"] in ("qr_ready", "pairing_code") and s, 30
        )
        if status["status"] == "pairing_code":
            # The reconnect came first: the code belongs to the engine that runs now.
            sim.enter_code(code)
            wait_status(bot, "connected", 45)
        else:
            # The pairing came first (the reconnect waited for it if it was still running,
            # and then says so); the code of the engine it replaced is offered nowhere.
            assert reconnect_reply.json()["queuedBehind"] in (None, "pair_code")
            assert status["pairingCode"] is None
            with pytest.raises(httpx.HTTPStatusError):
                sim.enter_code(code)


@pytest.mark.parametrize("first", ["logout", "reconnect"])
def test_a_reconnect_racing_a_logout_never_leaves_a_dead_device(
    sim: SimThread, tmp_path: Path, first: str
) -> None:
    with running_on(sim, tmp_path / "data") as bot:
        link(sim, bot)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            if first == "logout":
                logout = pool.submit(bot.post, "/logout")
                reconnect = pool.submit(bot.post, "/reconnect")
            else:  # the logout then finds the engine restarting and waits to unlink with it
                reconnect = pool.submit(bot.post, "/reconnect")
                reconnect.result()
                logout = pool.submit(bot.post, "/logout")
            logout_reply, reconnect_reply = logout.result(), reconnect.result()
        assert logout_reply.status_code == 200
        assert reconnect_reply.status_code == 202
        assert logout_reply.json()["unlinkedAtWhatsApp"] is True
        assert sim.devices() == []  # no dead entry left in the phone's Linked devices
        wait_status(bot, "qr_ready", 30)
        assert bot.status()["hasCredentials"] is False


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", [1, 7, 42])
def test_under_seeded_chaos_the_bot_links_and_no_state_outlives_its_deadline(
    sim: SimThread, tmp_path: Path, seed: int
) -> None:
    sim.faults(chaos={"seed": seed, "delay_max": 0.3, "early_close": 0.1, "drop_acks": 0.1})
    with running_on(sim, tmp_path / "data") as bot:
        with DeadlineWatch(bot) as watch:
            link_patiently(sim, bot, 180)
            before = bot.status()["lastDisconnectAt"]
            sim.faults(drop_linked_sessions=True)  # and once more, from a linked session
            wait_until(lambda: bot.status()["lastDisconnectAt"] != before, 30)
            wait_status(bot, "connected", 120)
        assert bot.status()["hasCredentials"] is True
        assert watch.violations == []
