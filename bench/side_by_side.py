"""Benchmark: waqr's bridge side by side with the bot it fronts and with the original design.

Starts everything on loopback: the simulator, a real `waqr bot` (the real engine), waqr's
bridge with the in-memory cache, with a Redis it starts, and with two workers, and the
original design's bridge (bench/baseline.py: Redis first, `wa:last_qr` with a 120 s TTL, the
bot asked on a miss). Then, in one run, with repetitions interleaved across the targets:

- `GET /admin/wa/qr` and `/admin/wa/status` rates with wrk (50 connections), while a QR is on
  offer, and `/status` again once linked; the bot's own `/qr` and `/status` beside them;
- stale QR answers of a client polling every 0.5 s across rotations (each answer compared with
  the code the bot holds just before and just after it), how long after the bot had a new
  code that poller first saw it, and the same over the bridge's SSE stream;
- relink from a QR on offer until a new QR is served; scan until connected; first QR after
  start; a dropped connection until connected again;
- footprint: RSS, open files and idle CPU of each process.

    uv run python -m bench.side_by_side                   # the full run (several minutes)
    uv run python -m bench.side_by_side --smoke           # seconds; what the test suite runs

Prints a table (min / median / max over repetitions, and ratios to the bot) and writes
bench/results/side_by_side-<timestamp>.json. It never fails on a number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from bench.report import RESULTS  # noqa: E402
from tests.e2e.harness import SimThread, bot_on, current_qr, simulator  # noqa: E402
from tests.integration.test_bridge import TOKEN, running_bridge  # noqa: E402
from tests.procs import (  # noqa: E402
    RedisServer,
    ServiceProcess,
    cpu_seconds,
    free_port,
    wait_until,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Target:
    name: str
    url: str  # the full URL wrk hits
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Settings:
    duration: int = 20
    repetitions: int = 3
    connections: int = 50
    stale_seconds: float = 60.0
    relinks: int = 3

    @classmethod
    def smoke(cls) -> Settings:
        return cls(duration=1, repetitions=1, connections=4, stale_seconds=2.0, relinks=1)


# --- measuring ---------------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(target: Target, s: Settings) -> dict[str, float]:
    """Requests per second and p99 latency (ms) of ``target`` under wrk."""
    argv = ["wrk", "-t2", f"-c{s.connections}", f"-d{s.duration}s", "--latency"]
    for key, value in target.headers.items():
        argv += ["-H", f"{key}: {value}"]
    out = subprocess.run(
        [*argv, target.url], capture_output=True, text=True, timeout=s.duration + 60, check=True
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rate,
        "p99_ms": float(p99.group(1)) * _UNITS[p99.group(2)] if p99 else float("nan"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def rates(targets: list[Target], s: Settings) -> dict[str, dict[str, Any]]:
    """Each target under wrk, the repetitions interleaved (a-b-c, a-b-c, ...)."""
    runs: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
    for _ in range(s.repetitions):
        for target in targets:
            runs[target.name].append(wrk(target, s))
    return {
        name: {
            "rps": spread([r["rps"] for r in results]),
            "p99_ms": spread([r["p99_ms"] for r in results]),
            "non_2xx": sum(r["non_2xx"] for r in results),
        }
        for name, results in runs.items()
    }


class QrArrivals:
    """When each QR code first arrived on an SSE stream (``qr`` events), followed in a thread
    from construction until :meth:`stop`."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.first: dict[str, float] = {}
        self._response: httpx.Response | None = None
        self._stopped = False
        self.opened = threading.Event()  # set once the stream's first line arrived
        self._thread = threading.Thread(target=self._follow, args=(url, headers), daemon=True)
        self._thread.start()

    def _follow(self, url: str, headers: dict[str, str]) -> None:
        timeout = httpx.Timeout(10.0, read=None)
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", url, headers=headers, timeout=timeout) as response,
        ):
            self._response = response
            kind = ""
            for line in response.iter_lines():
                self.opened.set()
                if self._stopped:
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind == "qr":
                    code = json.loads(line[5:]).get("qr")
                    if code:
                        self.first.setdefault(code, time.monotonic())

    def stop(self) -> None:
        self._stopped = True
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()
        self._thread.join(5)


def delays_ms(seen: dict[str, float], born: dict[str, float], since: float) -> dict[str, Any]:
    """How long after the bot had each code (``born``, after ``since``) it was seen: p50 and
    max in ms, and how many codes were never seen at all."""
    codes = [code for code, at in born.items() if at >= since]
    delays = sorted(1000 * (seen[c] - born[c]) for c in codes if c in seen)
    return {
        "codes": len(codes),
        "never_seen": sum(c not in seen for c in codes),
        "p50_ms": statistics.median(delays) if delays else float("nan"),
        "max_ms": max(delays) if delays else float("nan"),
    }


def stale_rate(
    bot: ServiceProcess, url: str, seconds: float, born: dict[str, float]
) -> dict[str, Any]:
    """Poll ``url`` every 0.5 s; an answer is stale when it is neither the code the bot held
    just before nor just after it. Also how long after the bot had a code (``born``: when
    its own event stream showed it) the poller first saw it."""
    held = lambda: bot.get("/qr", params={"peek": "true"}).json().get("qr")  # noqa: E731
    answers = stale = 0
    first_seen: dict[str, float] = {}
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        before = held()
        answer = httpx.get(url, headers=AUTH, timeout=10).json().get("qr")
        after = held()
        if answer:
            answers += 1
            first_seen.setdefault(answer, time.monotonic())
            stale += answer not in (before, after)
        time.sleep(0.5)
    return {
        "answers": answers,
        "stale_pct": 100.0 * stale / answers if answers else float("nan"),
        "codes_seen": len(first_seen),
        "new_qr_visible": delays_ms(first_seen, born, started),
    }


def seconds_until(predicate: Callable[[], Any], timeout: float = 120) -> float:
    started = time.monotonic()
    wait_until(predicate, timeout, 0.05)
    return time.monotonic() - started


def footprint(pids: dict[str, int], idle: float) -> dict[str, dict[str, float]]:
    """RSS (MB), open files and CPU share over ``idle`` seconds of each process."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(idle)
    out = {}
    for name, pid in pids.items():
        rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))  # type: ignore[union-attr]
        out[name] = {
            "rss_mb": rss / 1024,
            "fds": float(len(list(Path(f"/proc/{pid}/fd").iterdir()))),
            "idle_cpu_pct": 100.0 * (cpu_seconds(pid) - before[name]) / idle,
        }
    return out


def relink_time(bridge: ServiceProcess, bot: ServiceProcess) -> float:
    """From asking the bridge for a relink while a QR is on offer to the bridge serving a new
    QR (the old link's credentials wiped, a fresh engine, its first code)."""
    old = current_qr(bot)["qr"]

    def served() -> str | None:
        code: str | None = bridge.get("/admin/wa/qr", headers=AUTH).json().get("qr")
        return code

    started = time.monotonic()
    bridge.post("/admin/wa/reconnect", params={"reset": "true"}, headers=AUTH)
    wait_until(lambda: (code := served()) and code != old, 60, 0.05)
    return time.monotonic() - started


def scan_until_connected(sim: SimThread, bot: ServiceProcess) -> tuple[float, list[str]]:
    """Seconds from scanning the code the bot shows to connected. A scan the simulator refuses
    (the code ran out on its way, or the engine did not answer in time) is noted and tried
    again with the code on offer then, at most three times."""
    refusals: list[str] = []
    while True:
        try:
            sim.scan(current_qr(bot)["qr"])
            break
        except httpx.HTTPStatusError as exc:
            refusals.append(f"{exc.response.status_code}: {exc.response.text[:200]}")
            if len(refusals) == 3:
                raise
    return seconds_until(lambda: bot.status()["connected"], 60), refusals


# --- the stack ---------------------------------------------------------------------------------
@contextlib.contextmanager
def baseline(workdir: Path, bot: ServiceProcess, redis_url: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "BASELINE_BOT_URL": bot.url,
        "BASELINE_REDIS_URL": redis_url,
        "BASELINE_TOKEN": TOKEN,
    }
    log = (workdir / "baseline.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.baseline:app", "--port", str(port),
         "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/docs", timeout=2).status_code == 200, 30)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


def run(s: Settings, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"settings": s.__dict__}
    with contextlib.ExitStack() as stack:
        sim: SimThread = stack.enter_context(simulator(workdir / "sim"))
        sim.faults(refs=2)  # a code lives 20 s: rotations inside a short run
        bot = bot_on(sim, workdir / "bot", WAQR_LOG_LEVEL="WARNING")
        started = time.monotonic()
        bot.start()
        current_qr(bot, 60)
        result["first_qr_after_start_s"] = time.monotonic() - started
        redis = RedisServer(workdir / "redis").start()
        stack.callback(redis.stop)
        quiet = {"WAQR_LOG_LEVEL": "WARNING"}
        memory = stack.enter_context(running_bridge(workdir / "api-mem", bot.url, **quiet))
        with_redis = stack.enter_context(
            running_bridge(workdir / "api-redis", bot.url, REDIS_URL=redis.url, **quiet)
        )
        two = stack.enter_context(
            running_bridge(workdir / "api-2w", bot.url, WAQR_API_WORKERS="2", **quiet)
        )
        # Its own Redis database: waqr keeps its QR under the same key name.
        base = stack.enter_context(baseline(workdir, bot, redis.url.rsplit("/", 1)[0] + "/1"))
        stack.callback(bot.stop)
        bridges = {"waqr": memory.url, "waqr+redis": with_redis.url, "waqr 2 workers": two.url}
        for url in bridges.values():
            wait_until(lambda u=url: httpx.get(u + "/admin/wa/qr", headers=AUTH, timeout=5)
                       .json().get("source") == "push", 30)  # fmt: skip

        def targets(path: str, bot_path: str) -> list[Target]:
            return [
                Target("bot", bot.url + bot_path),
                *(Target(n, u + path, AUTH) for n, u in bridges.items()),
                Target("original design", base + path, AUTH),
            ]

        result["qr_rates"] = rates(targets("/admin/wa/qr", "/qr"), s)
        result["status_rates_qr"] = rates(targets("/admin/wa/status", "/status"), s)
        born = QrArrivals(bot.url + "/events", {})  # when the bot has each code
        pushed = QrArrivals(memory.url + "/admin/wa/events", AUTH)
        # Past both streams' opening snapshots: the code on offer then was born earlier.
        born.opened.wait(10)
        pushed.opened.wait(10)
        time.sleep(0.5)
        started = time.monotonic()
        try:
            result["stale"] = {
                "waqr": stale_rate(bot, memory.url + "/admin/wa/qr", s.stale_seconds, born.first),
                "original design": stale_rate(
                    bot, base + "/admin/wa/qr", s.stale_seconds, born.first
                ),
            }
        finally:
            born.stop()
            pushed.stop()
        result["new_qr_over_sse"] = delays_ms(pushed.first, born.first, started)
        relinks = [relink_time(memory, bot) for _ in range(s.relinks)]
        result["relink_to_new_qr_s"] = spread(relinks)
        result["scan_to_connected_s"], result["scan_refusals"] = scan_until_connected(sim, bot)
        result["status_rates_linked"] = rates(targets("/admin/wa/status", "/status"), s)
        # Connected again on a new connection: `since` moves (the session may leave and
        # re-enter `connected` faster than any poll sees it go).
        before = bot.status()["since"]
        sim.faults(drop_linked_sessions=True)
        result["drop_to_connected_s"] = seconds_until(
            lambda: (st := bot.status())["connected"] and st["since"] != before, 120
        )
        pids = {
            "bot": bot.proc.pid,  # type: ignore[union-attr]
            "waqr bridge": memory.proc.pid,  # type: ignore[union-attr]
            "redis": redis.proc.pid,  # type: ignore[union-attr]
        }
        result["footprint"] = footprint(pids, 2.0 if s.duration <= 1 else 10.0)
    return result


# --- the table ---------------------------------------------------------------------------------
def table(result: dict[str, Any]) -> str:
    lines = [f"{'figure':<44}{'target':<20}{'min':>10}{'median':>10}{'max':>10}{'x bot':>8}"]

    def rate_rows(title: str, block: dict[str, Any]) -> None:
        bot_median = block["bot"]["rps"]["median"]
        for name, figures in block.items():
            r = figures["rps"]
            ratio = r["median"] / bot_median if bot_median else float("nan")
            lines.append(
                f"{title:<44}{name:<20}{r['min']:>10.0f}{r['median']:>10.0f}{r['max']:>10.0f}"
                f"{ratio:>8.2f}"
            )
            p = figures["p99_ms"]
            lines.append(f"{'  p99 ms':<44}{name:<20}{p['min']:>10.1f}{p['median']:>10.1f}"
                         f"{p['max']:>10.1f}")  # fmt: skip

    rate_rows("GET qr req/s (QR on offer)", result["qr_rates"])
    rate_rows("GET status req/s (QR on offer)", result["status_rates_qr"])
    rate_rows("GET status req/s (linked)", result["status_rates_linked"])
    for name, stale in result["stale"].items():
        lines.append(f"{'stale QR answers % (0.5 s poller)':<44}{name:<20}"
                     f"{stale['stale_pct']:>30.1f}")  # fmt: skip
    for name, stale in result["stale"].items():
        seen = stale["new_qr_visible"]
        lines.append(f"{'new QR visible to the poller p50 / max ms':<44}{name:<20}"
                     f"{seen['p50_ms']:>10.0f}{'':>10}{seen['max_ms']:>10.0f}"
                     f"  ({seen['never_seen']} of {seen['codes']} never served)")  # fmt: skip
    sse = result["new_qr_over_sse"]
    lines.append(f"{'new QR over the bridge SSE p50 / max ms':<44}{'waqr':<20}"
                 f"{sse['p50_ms']:>10.1f}{'':>10}{sse['max_ms']:>10.1f}"
                 f"  ({sse['never_seen']} of {sse['codes']} never sent)")  # fmt: skip
    r = result["relink_to_new_qr_s"]
    lines.append(f"{'relink -> new QR served, s':<44}{'waqr':<20}"
                 f"{r['min']:>10.2f}{r['median']:>10.2f}{r['max']:>10.2f}")  # fmt: skip
    for key in ("first_qr_after_start_s", "scan_to_connected_s", "drop_to_connected_s"):
        lines.append(f"{key.replace('_', ' '):<44}{'waqr':<20}{result[key]:>30.2f}")
    for name, f in result["footprint"].items():
        lines.append(
            f"{'footprint: RSS MB / fds / idle CPU %':<44}{name:<20}"
            f"{f['rss_mb']:>10.1f}{f['fds']:>10.0f}{f['idle_cpu_pct']:>10.2f}"
        )
    return "\n".join(lines)


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny counts: seconds, not minutes")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 20)")
    parser.add_argument("--repetitions", type=int, help="wrk runs per target (default 3)")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings.smoke() if args.smoke else Settings()
    if args.duration:
        s.duration = args.duration
    if args.repetitions:
        s.repetitions = args.repetitions
    return s


def measured(s: Settings) -> dict[str, Any]:
    """Run the side-by-side figures; the logs stay behind (and are named) when it fails."""
    workdir = Path(tempfile.mkdtemp(prefix="waqr-bench-"))
    try:
        result = run(s, workdir)
    except Exception:
        print(f"bench: failed; logs are kept in {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    return result


def write(result: dict[str, Any], name: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = RESULTS / (f"{name}-{stamp}.json" if name else f"{stamp}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out


def wrk_missing() -> bool:
    if shutil.which("wrk") is None:
        print("bench: wrk is missing (apt-get install wrk)", file=sys.stderr)
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__.splitlines()[0]).parse_args(argv)
    if wrk_missing():
        return 2
    result = measured(settings_from(args))
    print(table(result))
    print(f"written: {write(result, 'side_by_side-smoke' if args.smoke else 'side_by_side')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
