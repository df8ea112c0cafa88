"""`waqr api --workers 2`: every worker follows the bot itself and answers from what it
pushed, and SIGTERM stops them all."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.integration.test_bridge import BEARER, StandInBot, running_bridge
from tests.procs import descendants, process_alive, wait_until


def test_two_workers_each_follow_the_bot_and_stop_together(tmp_path: Path) -> None:
    with StandInBot() as bot, running_bridge(tmp_path, bot.url, WAQR_API_WORKERS="2") as api:
        assert api.proc is not None
        workers = wait_until(lambda: len(w := descendants(api.proc.pid)) >= 2 and w, 30)
        # Each worker opened its own stream from the bot.
        wait_until(lambda: bot.count("GET /events") >= 2, 30)
        bot.status = {"status": "disconnected", "connected": False, "seq": 7}
        answers = [api.get("/admin/wa/status", headers=BEARER).json() for _ in range(40)]
        wait_until(
            lambda: all(
                api.get("/admin/wa/status", headers=BEARER).json().get("seq") == 7
                for _ in range(20)
            ),
            10,
        )
        assert all(a["status"] in ("connecting", "disconnected") for a in answers)
        api.proc.terminate()
        try:
            assert api.proc.wait(30) == 0
        except subprocess.TimeoutExpired:
            os.killpg(api.proc.pid, 9)
            raise
    wait_until(lambda: not any(process_alive(pid) for pid in workers), 30)
