"""Counters of engine child processes, process-wide: every ChildEngine in a bot process
counts here, and the bot serves them at /metrics beside its session metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

ENGINE_REGISTRY = CollectorRegistry()
ENGINE_STARTS = Counter(
    "waqr_engine_starts", "Engine child processes started", registry=ENGINE_REGISTRY
)
ENGINE_EXITS = Counter(
    "waqr_engine_exits",
    "Engine child processes ended, by reason (stopped, engine_crashed, engine_unresponsive, ...)",
    ["reason"],
    registry=ENGINE_REGISTRY,
)
