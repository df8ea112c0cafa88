"""The retry schedule, the child's QR lifetimes, and the pipe protocol."""

from __future__ import annotations

import random

import pytest

from waqr.backoff import Backoff
from waqr.engine import protocol as p
from waqr.engine.child import qr_lifetime
from waqr.engine.wire import decode_event, encode_event, encode_reply


def test_backoff_grows_geometrically_with_jitter_and_a_cap() -> None:
    backoff = Backoff(1.0, 30.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    for n, delay in enumerate(delays):
        ceiling = min(30.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 30.0
    backoff.reset()
    assert backoff.next_delay() <= 1.0


@pytest.mark.parametrize(
    ("index", "batch", "lifetime"),
    [(0, 6, 60.0), (1, 6, 20.0), (5, 6, 20.0), (0, 1, 20.0), (0, None, 60.0), (0, 3, 20.0)],
)
def test_qr_lifetimes_follow_whatsmeow(index: int, batch: int | None, lifetime: float) -> None:
    assert qr_lifetime(index, batch) == lifetime


@pytest.mark.parametrize(
    "event",
    [
        p.QrIssued(code="c", lifetime=20.0),
        p.Connected(jid=None, push_name="x"),
        p.LoggedOut(code=401, on_connect=True),
        p.TemporaryBan(ban_code=1, expires_in=60.0),
        p.DialFailed(error="refused"),
        p.EngineExited(expected=False, reason="engine_crashed", detail="SIGKILL"),
        p.Disconnected(),
    ],
)
def test_events_cross_the_pipe_unchanged(event: p.EngineEvent) -> None:
    assert decode_event(encode_event(event)) == event


def test_replies_decode_to_dicts_and_garbage_is_refused() -> None:
    assert decode_event(encode_reply(3, ok=True, result="ABCD-EFGH")) == {
        "id": 3,
        "ok": True,
        "result": "ABCD-EFGH",
        "error": "",
    }
    with pytest.raises(ValueError):
        decode_event(b'{"event": "nonsense"}')
    with pytest.raises(ValueError):
        decode_event(b"not json")
