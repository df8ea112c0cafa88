"""Benchmark: how long a dead link is reported as `connected`.

A real `waqr bot` with the real engine links through the simulator; then the simulator
black-holes the connection (the socket stays open, nothing is answered: a NAT timeout, a dying
middlebox, a half-open socket). Measured from that moment: when `/status` leaves `connected`
(reason `link_unresponsive`) and when it is `connected` again on a fresh login. whatsmeow alone
reports `connected` for about five minutes here (3 min without a successful ping, then its
own silent reconnect).

    uv run python bench/dead_link.py --runs 2

Prints a table and writes bench/results/dead_link.json. Defaults as shipped
(WAQR_KEEPALIVE_FAIL_TIMEOUT=45). Target: leaves `connected` within 90 s (up to 30 s until
whatsmeow's next ping, its 10 s deadline, then the 45 s), connected again within 30 s after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import report  # noqa: E402
from tests.e2e.harness import bot_on, link, simulator  # noqa: E402
from tests.procs import wait_until  # noqa: E402

LEAVE_TARGET = 90.0
BACK_TARGET = 30.0


def one_run(workdir: Path) -> tuple[float, float]:
    with simulator(workdir / "sim") as sim:
        bot = bot_on(sim, workdir / "data", WAQR_LOG_LEVEL="WARNING").start()
        try:
            link(sim, bot)
            sim.faults(black_hole={"seconds": 900, "then": "close", "now": True})
            started = time.monotonic()
            wait_until(lambda: bot.status()["status"] != "connected", 300, 0.2)
            left = time.monotonic() - started
            wait_until(lambda: bot.status()["status"] == "connected", 120, 0.2)
            back = time.monotonic() - started - left
        finally:
            bot.stop()
    return left, back


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    lefts, backs = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            left, back = one_run(Path(tmp))
        lefts.append(left)
        backs.append(back)
    result = {
        "runs": args.runs,
        "black_holed_to_not_connected_s": [round(x, 1) for x in lefts],
        "not_connected_to_connected_again_s": [round(x, 1) for x in backs],
        "median_leave_s": round(statistics.median(lefts), 1),
        "median_back_s": round(statistics.median(backs), 1),
        "targets": {"leave_s_max": LEAVE_TARGET, "back_s_max": BACK_TARGET},
    }
    result["within_targets"] = max(lefts) <= LEAVE_TARGET and max(backs) <= BACK_TARGET
    report("dead_link", result, width=36)
    return 0


if __name__ == "__main__":
    sys.exit(main())
