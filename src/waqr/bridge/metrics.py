"""Prometheus metrics of one bridge process (served at /metrics, behind the Bearer token)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class BridgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.auth_failures = Counter(
            "waqr_bridge_auth_failures", "Failed authentications", registry=self.registry
        )
        self.bot_errors = Counter(
            "waqr_bridge_bot_errors", "Failed calls to the bot", ["kind"], registry=self.registry
        )
        self.qr_served = Counter(
            "waqr_bridge_qr_served", "QR answers by source", ["source"], registry=self.registry
        )
        self.bot_connected = Gauge(
            "waqr_bot_connected",
            "1 while the WhatsApp session is connected",
            registry=self.registry,
        )
        self.cache_degraded = Gauge(
            "waqr_bridge_cache_degraded", "1 while Redis is failing", registry=self.registry
        )
        self.bot_up = Gauge(
            "waqr_bot_up",
            "1 while the bridge reaches the bot (its event stream or its last check answered)",
            registry=self.registry,
        )

    def observe_bot(self, state: str | None) -> None:
        """What the relay or the keepalive just learnt: the bot's state, or None when the bot
        could not be reached. A bot that cannot be reached is not connected either."""
        self.bot_up.set(0 if state is None else 1)
        self.bot_connected.set(1 if state == "connected" else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
