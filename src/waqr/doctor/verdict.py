"""What the doctor found: one ``Step`` per layer, and the ``Report`` that names the verdict.

A step either passed, failed (with a machine-readable ``cause``, a sentence for people and the
concrete fixes to try), or was skipped because a layer below it failed. The verdict is the
first failed step: the layers are probed bottom up, so the first failure is the one to fix.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Layer(enum.StrEnum):
    CONFIG = "config"
    DNS = "dns"
    TCP = "tcp"
    PROXY = "proxy"
    TLS = "tls"
    WEBSOCKET = "websocket"
    NOISE = "noise"
    ACCOUNT = "account"


class Outcome(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Step:
    layer: Layer
    outcome: Outcome
    detail: str  # what was seen ("resolved to 1.2.3.4", "proxy answered 403 Forbidden")
    elapsed_ms: float = 0.0
    cause: str | None = None  # set when failed: e.g. "tcp_refused", "proxy_auth_required"
    fixes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "layer": self.layer.value,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "elapsedMs": round(self.elapsed_ms, 1),
        }
        if self.cause is not None:
            body["cause"] = self.cause
            body["fixes"] = list(self.fixes)
        return body


class LayerFailed(Exception):
    """Raised inside a probe step: the layer failed for ``cause``; carries the fixes."""

    def __init__(self, cause: str, detail: str, *fixes: str) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail
        self.fixes = fixes


@dataclass
class Report:
    target: str  # host:port probed, and the proxy's address (never its credentials)
    via: str | None
    steps: list[Step] = field(default_factory=list)

    @property
    def verdict(self) -> Step | None:
        """The first failed step, or None when every layer probed passed."""
        return next((s for s in self.steps if s.outcome is Outcome.FAILED), None)

    @property
    def healthy(self) -> bool:
        return self.verdict is None

    def as_json(self) -> dict[str, Any]:
        verdict = self.verdict
        return {
            "healthy": verdict is None,
            "target": self.target,
            "via": self.via,
            "verdict": verdict.as_json() if verdict else None,
            "steps": [step.as_json() for step in self.steps],
        }
