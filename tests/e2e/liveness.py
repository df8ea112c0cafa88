"""A watcher for end-to-end tests: polls a real bot's /status and /health while a test runs and
records every moment a state outlived its own deadline, or the bot said it was unhealthy."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from tests.e2e.harness import SimThread, wait_status
from tests.procs import ServiceProcess, wait_until

# How far past its deadline a state may be seen: the actor acts at once, but stopping the old
# engine and the polling interval take a moment.
DEADLINE_MARGIN = 5.0
# A scheduled retry also waits for the previous engine to finish stopping (its stop timeout).
RETRY_MARGIN = 12.0


def _unix(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class DeadlineWatch:
    """``with DeadlineWatch(bot) as watch: ...``; then ``watch.violations`` and ``watch.seen``."""

    def __init__(self, bot: ServiceProcess, interval: float = 0.25) -> None:
        self.bot = bot
        self.interval = interval
        self.violations: list[str] = []
        self.seen: list[tuple[str, str | None]] = []  # (state, reason code), as they changed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DeadlineWatch:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.bot.url, timeout=5) as client:
            while not self._stop.wait(self.interval):
                try:
                    status = client.get("/status").json()
                    health = client.get("/health")
                except httpx.HTTPError:
                    continue
                self._check(status, health)

    def _check(self, status: dict[str, Any], health: httpx.Response) -> None:
        now = time.time()
        reason = status["lastDisconnectReason"]
        entry = (status["status"], reason["code"] if reason else None)
        if not self.seen or self.seen[-1] != entry:
            self.seen.append(entry)
        deadline = _unix(status.get("deadlineAt"))
        if deadline is not None and now > deadline + DEADLINE_MARGIN:
            self.violations.append(f"{status['status']} {now - deadline:.1f} s past its deadline")
        retry = _unix(status.get("nextRetryAt"))
        idle = status["engine"]["running"] is False
        if retry is not None and idle and now > retry + RETRY_MARGIN:
            self.violations.append(f"retry {now - retry:.1f} s overdue")
        if health.status_code != 200:
            self.violations.append(f"/health {health.status_code}: {health.text[:200]}")

    def reasons(self) -> set[str]:
        return {code for _, code in self.seen if code}


def link_patiently(sim: SimThread, bot: ServiceProcess, timeout: float) -> dict[str, Any]:
    """Scan whatever QR the bot shows until it is connected: under chaos a scan can meet a
    connection the server has just closed, and the bot then offers a new one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bot.status()["status"] == "connected":
            return bot.status()
        qr = bot.get("/qr").json()
        if qr["qr"]:
            try:
                sim.scan(qr["qr"])
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            try:
                return wait_status(bot, "connected", 30)
            except AssertionError:
                continue
        time.sleep(0.5)
    result: dict[str, Any] = wait_until(lambda: bot.status()["status"] == "connected", 1)
    return result
