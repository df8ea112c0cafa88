"""The bridge's failure limiter: only failures count, and its memory is bounded."""

from __future__ import annotations

from waqr.bridge.auth import FailureLimiter


def test_failures_past_the_limit_must_wait() -> None:
    limiter = FailureLimiter(max_failures=3)
    assert [limiter.fail("10.0.0.1") for _ in range(3)] == [None, None, None]
    wait = limiter.fail("10.0.0.1")
    assert wait is not None and 1 <= wait <= 61
    assert limiter.fail("10.0.0.2") is None  # another client is not affected


def test_spoofed_addresses_cannot_grow_the_table_without_bound() -> None:
    limiter = FailureLimiter(max_failures=10, max_clients=100)
    for n in range(30_000):
        limiter.fail(f"198.51.100.{n}")
    assert len(limiter) == 100


def test_a_client_keeps_at_most_max_failures_timestamps() -> None:
    limiter = FailureLimiter(max_failures=5)
    for _ in range(1000):
        limiter.fail("10.0.0.1")
    assert len(limiter._failures["10.0.0.1"]) == 5
