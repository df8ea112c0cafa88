"""Is a secret strong enough to guard the bridge? Rules for tokens a person might type or copy
from an example, tuned so that a generated one (``secrets.token_urlsafe(32)``, ``token_hex(32)``)
is never refused.

A token is weak when it has fewer than 10 distinct characters, when one character makes up more
than a quarter of it, when it holds a run of 8 consecutive characters (``abcdefgh``,
``12345678``), when it repeats a shorter unit (``password`` four times), or when it contains a
placeholder word and its entropy estimate (``length x log2(distinct characters)``) is under
192 bits. For 43 random URL-safe characters each rule has odds far below one in a million.
"""

from __future__ import annotations

import math
from collections import Counter

MIN_DISTINCT = 10
MAX_SHARE = 0.25
SEQUENCE_RUN = 8
PLACEHOLDER_BITS = 192
PLACEHOLDERS = (
    "changeme",
    "password",
    "secret",
    "token",
    "example",
    "placeholder",
    "yourtoken",
    "your-token",
    "replace",
)


def _longest_sequence(token: str) -> int:
    """The longest run of characters whose code points step by +1 (or by -1)."""
    best = run = 1
    step = 0
    for before, after in zip(token, token[1:], strict=False):
        delta = ord(after) - ord(before)
        if delta in (1, -1) and (run == 1 or delta == step):
            run, step = run + 1, delta
        elif delta in (1, -1):
            run, step = 2, delta
        else:
            run, step = 1, 0
        best = max(best, run)
    return best


def _period(token: str) -> int | None:
    """The length of a unit the token repeats (possibly cut short at the end), if any."""
    for unit in range(1, len(token) // 2 + 1):
        if all(token[i] == token[i - unit] for i in range(unit, len(token))):
            return unit
    return None


def weakness(token: str) -> str | None:
    """Why ``token`` is too weak, in words that never repeat it; None when it is fine."""
    counts = Counter(token)
    if len(counts) < MIN_DISTINCT:
        return f"it has only {len(counts)} distinct characters (at least {MIN_DISTINCT})"
    if max(counts.values()) > MAX_SHARE * len(token):
        return "one character makes up more than a quarter of it"
    if _longest_sequence(token) >= SEQUENCE_RUN:
        return f"it contains a run of {SEQUENCE_RUN} or more consecutive characters"
    unit = _period(token)
    if unit is not None:
        return f"it repeats a unit of {unit} characters"
    lowered = token.lower()
    bits = len(token) * math.log2(len(counts))
    if bits < PLACEHOLDER_BITS and any(word in lowered for word in PLACEHOLDERS):
        return "it looks like a placeholder from an example"
    return None
