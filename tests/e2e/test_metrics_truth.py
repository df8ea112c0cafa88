"""Metrics tell the truth when the bot dies: scraped from the bot and the bridge before and
after a SIGKILL of the bot, without anyone asking the bridge for the status in between (the
gauges follow the relay and the keepalive, not status requests)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import SimThread, bot_on, link
from tests.integration.test_bridge import BEARER, running_bridge
from tests.procs import ServiceProcess, wait_until


def scrape(service: ServiceProcess, **kw: object) -> dict[str, float]:
    """Unlabelled samples and the session-state samples, by name."""
    answer = service.get("/metrics", **kw)
    assert answer.status_code == 200
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            state = sample.labels.get("state")
            found[sample.name + (f"[{state}]" if state else "")] = sample.value
    return found


def test_bot_and_bridge_metrics_before_and_after_the_bot_is_killed(
    sim: SimThread, tmp_path: Path
) -> None:
    bot = bot_on(sim, tmp_path / "bot").start()
    try:
        link(sim, bot)
        with running_bridge(tmp_path / "api", bot.url, KEEPALIVE_INTERVAL="1") as api:
            wait_until(lambda: scrape(api, headers=BEARER)["waqr_bot_connected"] == 1, 30)
            bridge = scrape(api, headers=BEARER)
            assert bridge["waqr_bot_up"] == 1
            mine = scrape(bot)
            assert mine["waqr_session_state[connected]"] == 1
            assert mine["waqr_last_connected_timestamp_seconds"] > 0

            os.killpg(bot.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            bot.proc.wait(10)  # type: ignore[union-attr]

            after = wait_until(
                lambda: (m := scrape(api, headers=BEARER))["waqr_bot_up"] == 0 and m, 30
            )
            assert after["waqr_bot_connected"] == 0

            bot.start()  # same data: the link survives, and the gauges say so again
            wait_until(lambda: scrape(api, headers=BEARER)["waqr_bot_connected"] == 1, 60)
            assert scrape(api, headers=BEARER)["waqr_bot_up"] == 1
    finally:
        bot.stop()
