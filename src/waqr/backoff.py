"""Exponential backoff with jitter, capped: the one retry schedule waqr uses."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay n (0-based) is drawn from [d/2, d] with d = min(maximum, minimum * 2**n): it grows
    geometrically, never exceeds the cap, and the jitter keeps a fleet of bots that lost the
    network together from reconnecting in lockstep."""

    minimum: float
    maximum: float
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.minimum * 2.0 ** min(self.attempts, 32))
        self.attempts += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempts = 0
