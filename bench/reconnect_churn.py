"""Benchmark: the bot service's resources across many engine reconnects.

neonize leaks a store per connect inside one process (300 attempts: 12 -> 312 file
descriptors, 66 -> 123 MB). waqr runs each attempt in a fresh child, so the service itself
should stay flat. This starts a real `waqr bot` whose WhatsApp route is a loopback proxy that
refuses CONNECT (every attempt fails fast), forces N reconnects, and reports the service's
file descriptors and RSS before and after, plus the pace of engine restarts (a request that
lands while an attempt is still in flight coalesces into it, so the pace is that of real
attempts: child start, neonize import, dial).

    uv run python bench/reconnect_churn.py --reconnects 50

Prints a table and writes bench/results/reconnect_churn.json. Targets: fd growth <= 2,
RSS growth <= 10 MB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import report  # noqa: E402
from tests.procs import MisbehavingProxy, running_bot, wait_until  # noqa: E402

REFUSED = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"


def fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reconnects", type=int, default=30)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(Path(tmp) / "data", WA_PROXY=proxy.url, WAQR_LOG_LEVEL="WARNING") as bot,
    ):
        pid = bot.proc.pid  # type: ignore[union-attr]
        wait_until(lambda: bot.status()["engine"]["starts"] >= 1, 30)
        time.sleep(2)
        before = {"fds": fds(pid), "rss_mb": rss_mb(pid)}
        started = time.monotonic()
        for _ in range(args.reconnects):
            target = bot.status()["engine"]["starts"] + 1
            bot.post("/reconnect")
            wait_until(lambda t=target: bot.status()["engine"]["starts"] >= t, 30, 0.02)
        elapsed = time.monotonic() - started
        time.sleep(7)  # let uvicorn's 5 s keep-alive close the bench's own connections
        after = {"fds": fds(pid), "rss_mb": rss_mb(pid)}
    result = {
        "reconnects": args.reconnects,
        "seconds": round(elapsed, 2),
        "reconnects_per_second": round(args.reconnects / elapsed, 2),
        "fds_before": before["fds"],
        "fds_after": after["fds"],
        "rss_mb_before": round(before["rss_mb"], 1),
        "rss_mb_after": round(after["rss_mb"], 1),
        "targets": {"fd_growth_max": 2, "rss_growth_mb_max": 10},
    }
    result["within_targets"] = (
        after["fds"] - before["fds"] <= 2 and after["rss_mb"] - before["rss_mb"] <= 10
    )
    report("reconnect_churn", result, width=24)
    return 0


if __name__ == "__main__":
    sys.exit(main())
