"""Session metrics follow the session's own event stream: one-hot state, QR refs issued, time
to connect, time in each state, last connected time."""

from __future__ import annotations

from waqr.bot.metrics import BotMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def state(name: str) -> dict[str, object]:
    return {"type": "state", "data": {"status": name}}


def value(metrics: BotMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"session": "default", **labels})


def test_the_state_gauge_is_one_for_the_current_state_only() -> None:
    metrics = BotMetrics(Clock())
    metrics.observe("default", state("connecting"))
    metrics.observe("default", state("qr_ready"))
    assert value(metrics, "waqr_session_state", state="qr_ready") == 1
    assert value(metrics, "waqr_session_state", state="connecting") == 0
    assert value(metrics, "waqr_session_state", state="connected") == 0


def test_time_to_connect_runs_from_leaving_connected_to_connected_again() -> None:
    clock = Clock()
    metrics = BotMetrics(clock)
    metrics.observe("default", state("starting"))
    clock.now += 2
    metrics.observe("default", state("qr_ready"))
    clock.now += 30  # a person scans
    metrics.observe("default", state("connected"))
    assert value(metrics, "waqr_time_to_connect_seconds_sum") == 32
    assert value(metrics, "waqr_last_connected_timestamp_seconds") == clock.now

    clock.now += 100
    metrics.observe("default", state("disconnected"))
    clock.now += 3
    metrics.observe("default", state("connecting"))
    clock.now += 1
    metrics.observe("default", state("connected"))
    assert value(metrics, "waqr_time_to_connect_seconds_count") == 2
    assert value(metrics, "waqr_time_to_connect_seconds_sum") == 36
    # Each state's stay is observed when it is left.
    assert value(metrics, "waqr_state_duration_seconds_sum", state="connected") == 100
    assert value(metrics, "waqr_state_duration_seconds_sum", state="qr_ready") == 30


def test_a_repeated_state_is_not_a_new_stay_and_qr_rotations_are_counted() -> None:
    clock = Clock()
    metrics = BotMetrics(clock)
    metrics.observe("default", state("qr_ready"))
    metrics.observe("default", {"type": "qr", "data": {"qr": "2@first"}})
    clock.now += 20
    metrics.observe("default", state("qr_ready"))
    metrics.observe("default", {"type": "qr", "data": {"qr": "2@second"}})
    metrics.observe("default", {"type": "qr", "data": {"qr": None}})  # withdrawn, not issued
    assert value(metrics, "waqr_qr_issued_total") == 2
    assert value(metrics, "waqr_state_duration_seconds_count", state="qr_ready") is None
    assert value(metrics, "waqr_last_connected_timestamp_seconds") == 0
