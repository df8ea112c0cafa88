"""The bot's /metrics tell what the real engine did: it was started, it offered QR refs, the
session became connected and how long that took."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import SimThread, current_qr, link, running_on
from tests.procs import ServiceProcess


def samples(bot: ServiceProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = bot.get("/metrics")
    assert answer.status_code == 200
    found = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def session(name: str, state: str | None = None) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"session": "default"} | ({"state": state} if state else {})
    return name, tuple(sorted(labels.items()))


def test_metrics_follow_a_real_link(sim: SimThread, tmp_path: Path) -> None:
    with running_on(sim, tmp_path / "bot") as bot:
        current_qr(bot)
        before = samples(bot)
        assert before[session("waqr_session_state", "qr_ready")] == 1
        assert before[session("waqr_session_state", "connected")] == 0
        assert before[session("waqr_qr_issued_total")] >= 1
        assert before[("waqr_engine_starts_total", ())] >= 1
        assert before[session("waqr_last_connected_timestamp_seconds")] == 0

        link(sim, bot)
        after = samples(bot)

    assert after[session("waqr_session_state", "connected")] == 1
    assert after[session("waqr_session_state", "qr_ready")] == 0
    assert after[session("waqr_time_to_connect_seconds_count")] == 1
    assert after[session("waqr_last_connected_timestamp_seconds")] > 0
    # The request to /status made on the way is counted by the HTTP instrumentation.
    assert any(
        name == "http_requests_total" and dict(labels).get("handler") == "/status"
        for name, labels in after
    )
