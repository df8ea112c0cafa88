"""Dead links with the real engine: a link whose server keeps the socket open and answers
nothing leaves `connected` within WAQR_KEEPALIVE_FAIL_TIMEOUT of its first missed ping and is
connected again once the server answers; a single missed ping is not a dead link."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import SimThread, link, running_on, wait_reason, wait_status
from tests.e2e.liveness import DeadlineWatch
from tests.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_a_black_holed_link_leaves_connected_and_comes_back(sim: SimThread, tmp_path: Path) -> None:
    with running_on(sim, tmp_path / "data", WAQR_KEEPALIVE_FAIL_TIMEOUT="20") as bot:
        link(sim, bot)
        pid = bot.status()["engine"]["pid"]
        with DeadlineWatch(bot) as watch:
            sim.faults(black_hole={"seconds": 600, "then": "close", "now": True})
            unstable = wait_until(lambda: (s := bot.status())["keepaliveFailing"] and s, 60)
            assert unstable["status"] == "connected"  # one miss is not yet a dead link
            status = wait_reason(bot, "link_unresponsive", 60)
            assert "unanswered since" in status["lastDisconnectReason"]["detail"]
            status = wait_status(bot, "connected", 60)  # a new login is answered
        assert status["engine"]["pid"] != pid
        assert status["hasCredentials"] is True
        assert status["keepaliveFailing"] is False
        assert watch.violations == []


def test_one_missed_ping_leaves_the_link_connected(sim: SimThread, tmp_path: Path) -> None:
    with running_on(sim, tmp_path / "data") as bot:  # the default 45 s
        link(sim, bot)
        pid = bot.status()["engine"]["pid"]
        sim.faults(ignore_pings=True)
        wait_until(lambda: bot.status()["keepaliveFailing"], 60)
        sim.faults(ignore_pings=False)  # the next ping, 20-30 s later, is answered
        status = wait_until(lambda: (s := bot.status())["keepaliveFailing"] is False and s, 60)
        assert status["status"] == "connected"
        assert status["engine"]["pid"] == pid
        reason = status["lastDisconnectReason"]  # linking itself may have left one
        assert reason is None or reason["code"] != "link_unresponsive"
