"""Prometheus metrics of one bot process, served at ``GET /metrics`` (behind the bot token).

Session metrics are read from each session's own event stream (the same state changes and
QR rotations ``/events`` carries), so they cannot disagree with ``/status``. Engine starts
and exits come from the supervisor's counters; HTTP request metrics from
prometheus-fastapi-instrumentator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from waqr.bot.session import Session
from waqr.bot.states import State
from waqr.engine.metrics import ENGINE_REGISTRY

# Linking by a person takes seconds to minutes; reconnects take under a few seconds.
_CONNECT_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
_STATE_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600)


class _Tracked:
    """What the metrics remember of one session between its events."""

    def __init__(self) -> None:
        self.state: str | None = None
        self.entered = 0.0
        self.dialling_since: float | None = None


class BotMetrics:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        r = self.registry
        self.state = Gauge(
            "waqr_session_state",
            "1 for the state the session is in, 0 for every other state",
            ["session", "state"],
            registry=r,
        )
        self.qr_issued = Counter(
            "waqr_qr_issued", "QR refs offered for scanning", ["session"], registry=r
        )
        self.time_to_connect = Histogram(
            "waqr_time_to_connect_seconds",
            "From leaving `connected` (or starting) to `connected` again",
            ["session"],
            buckets=_CONNECT_BUCKETS,
            registry=r,
        )
        self.time_in_state = Histogram(
            "waqr_state_duration_seconds",
            "How long the session stayed in a state, observed when it leaves it",
            ["session", "state"],
            buckets=_STATE_BUCKETS,
            registry=r,
        )
        self.last_connected = Gauge(
            "waqr_last_connected_timestamp_seconds",
            "Unix time the session last became connected (0: never in this process)",
            ["session"],
            registry=r,
        )
        self._sessions: dict[str, _Tracked] = {}

    def observe(self, session: str, event: dict[str, Any]) -> None:
        """One event from a session's stream (``{"type": "state"|"qr", "data": ...}``)."""
        if event.get("type") == "qr" and (event.get("data") or {}).get("qr"):
            self.qr_issued.labels(session=session).inc()
            return
        if event.get("type") != "state":
            return
        state = str(event["data"]["status"])
        now = self.clock()
        tracked = self._sessions.get(session)
        if tracked is None:
            tracked = self._sessions[session] = _Tracked()
            self.last_connected.labels(session=session).set(0)
            tracked.dialling_since = now
        if state == tracked.state:
            return
        if tracked.state is not None:
            self.time_in_state.labels(session=session, state=tracked.state).observe(
                now - tracked.entered
            )
        if state == State.CONNECTED:
            if tracked.dialling_since is not None:
                self.time_to_connect.labels(session=session).observe(now - tracked.dialling_since)
            tracked.dialling_since = None
            self.last_connected.labels(session=session).set(now)
        elif tracked.dialling_since is None:
            tracked.dialling_since = now
        for each in State:
            self.state.labels(session=session, state=each.value).set(1 if each == state else 0)
        tracked.state, tracked.entered = state, now

    async def watch(self, name: str, session: Session) -> None:
        async for event in session.subscribe():
            self.observe(name, event)

    def render(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(ENGINE_REGISTRY)
