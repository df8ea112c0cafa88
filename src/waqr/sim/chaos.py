"""Seeded chaos: a reproducible mix of the harm WhatsApp's servers and networks really do.

Three effects, each one WhatsApp or the path to it is seen to produce, none of which breaks the
protocol (no corrupt frame, no invented node):

* ``delay_max``: every server->client frame waits a random 0..delay_max seconds first, in order
  (frames of one connection never overtake each other: it is one TCP stream).
* ``early_close``: with this probability a connection is closed at one protocol point picked at
  random among those its kind passes (``REGISTRATION_POINTS``/``LOGIN_POINTS``); the client sees
  a plain close, as after a dropped TCP connection.
* ``drop_acks``: with this probability an iq from the client (ping, passive, encrypt, md...) is
  never answered: a half-open socket or a lost reply (whatsmeow's keepalive deadline is 10 s,
  other iqs 75 s, doc §7-§8).

One ``random.Random(seed)`` serves the whole world, and every decision draws the same number of
values whatever the settings, so one seed and one sequence of connections give one run.
(Connections running side by side draw in whatever order the event loop runs them.) Delays and
drops apply from the next frame or iq on; the close point is picked when a connection starts.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal

ChaosPoint = Literal["handshake", "pair_device", "pair_success", "restart", "success", "connected"]

# Where a registration connection may be closed: right after the Noise handshake, after the
# pair-device refs, after pair-success (before the client's pair-device-sign is read: the client
# may have saved its credentials, the server has not linked it) and after linking but before the
# 515 (the client waits for a restart that never comes).
REGISTRATION_POINTS: Final[tuple[ChaosPoint, ...]] = (
    "handshake",
    "pair_device",
    "pair_success",
    "restart",
)
# A login: after the handshake, after <success>, after the passive/active reply (Connected).
LOGIN_POINTS: Final[tuple[ChaosPoint, ...]] = ("handshake", "success", "connected")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ChaosSettings:
    """What ``POST /faults {"chaos": {...}}`` asks for (bounds are checked by the control API)."""

    seed: int
    delay_max: float = 0.0  # seconds
    early_close: float = 0.0  # probability per connection
    drop_acks: float = 0.0  # probability per client iq


class Chaos:
    """The world's one source of chaos decisions; create a new one to re-seed."""

    def __init__(self, settings: ChaosSettings, *, sleep: Sleep = asyncio.sleep) -> None:
        self.settings = settings
        # S311: reproducibility is the point here; nothing secret is drawn from this generator.
        self._random = random.Random(settings.seed)  # noqa: S311
        self._sleep = sleep  # tests pass a recorder instead of waiting

    def close_point(self, *, registration: bool) -> ChaosPoint | None:
        """Where this new connection will be closed, or None to leave it alone."""
        points = REGISTRATION_POINTS if registration else LOGIN_POINTS
        doomed = self._random.random() < self.settings.early_close
        point = self._random.choice(points)  # drawn either way: one decision, two draws
        return point if doomed else None

    def drops_ack(self) -> bool:
        """Whether the client iq at hand goes unanswered."""
        return self._random.random() < self.settings.drop_acks

    async def delay(self) -> None:
        """Hold the next server->client frame back for a random while."""
        seconds = self._random.uniform(0.0, self.settings.delay_max)
        if seconds > 0:
            await self._sleep(seconds)
