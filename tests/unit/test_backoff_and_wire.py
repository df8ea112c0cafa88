"""The retry schedule, the child's QR lifetimes, and the pipe protocol (which refuses every
message the event dataclasses do not describe, and never quotes one in its errors)."""

from __future__ import annotations

import asyncio
import random

import pytest

from waqr.backoff import Backoff
from waqr.engine import protocol as p
from waqr.engine.child import qr_lifetime
from waqr.engine.wire import (
    Overlong,
    Reply,
    WireError,
    decode_event,
    encode_event,
    encode_reply,
    read_lines,
)


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
        p.QrIssued(code="c", lifetime=20.0, issued_at=1_790_000_000.25),
        p.ServerUnavailable(code=503),
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


def test_replies_decode_to_typed_replies() -> None:
    assert decode_event(encode_reply(3, ok=True, result="ABCD-EFGH")) == Reply(
        id=3, ok=True, result="ABCD-EFGH", error=""
    )
    assert decode_event(encode_reply(4, ok=False, error="no")) == Reply(
        id=4, ok=False, result=None, error="no"
    )


def test_a_whole_number_arrives_as_a_float_where_a_float_is_declared() -> None:
    line = b'{"event": "qr", "code": "c", "lifetime": 60, "issued_at": 1790000000}'
    event = decode_event(line)
    assert event == p.QrIssued(code="c", lifetime=60.0, issued_at=1_790_000_000.0)
    assert isinstance(event, p.QrIssued) and isinstance(event.lifetime, float)


SECRET = "2@SECRETref,SECRETnoise"


@pytest.mark.parametrize(
    ("line", "fault"),
    [
        (b"not json " + SECRET.encode(), "not JSON"),
        (b"\xff\xfe" + SECRET.encode(), "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b'["' + SECRET.encode() + b'"]', "not an object"),
        (b'{"code": "' + SECRET.encode() + b'"}', "no event name"),
        (b'{"event": "' + SECRET.encode() + b'"}', "unknown event"),
        (b'{"event": "qr", "code": "' + SECRET.encode() + b'"}', "lacks field lifetime"),
        (
            b'{"event": "qr", "code": "c", "lifetime": 1, "issued_at": 1, "'
            + SECRET.encode()
            + b'": 1}',
            "unexpected field",
        ),
        (
            b'{"event": "qr", "code": ["' + SECRET.encode() + b'"], "lifetime": 1, "issued_at": 1}',
            "code is list",
        ),
        (b'{"event": "qr", "code": "c", "lifetime": "60", "issued_at": 1}', "lifetime is str"),
        (b'{"event": "qr", "code": "c", "lifetime": NaN, "issued_at": 1}', "non-JSON number"),
        (b'{"event": "qr", "code": "c", "lifetime": 1e999, "issued_at": 1}', "lifetime is float"),
        (b'{"event": "logged_out", "code": 1.5, "on_connect": true, "node": ""}', "code is float"),
        (b'{"event": "logged_out", "code": true, "on_connect": true, "node": ""}', "code is bool"),
        (b'{"event": "logged_out", "code": 401, "on_connect": 1, "node": ""}', "on_connect is int"),
        (b'{"event": "connected", "jid": 5, "push_name": null}', "jid is int"),
        (
            b'{"event": "reply", "id": null, "ok": true, "result": null, "error": ""}',
            "id is NoneType",
        ),
        (b'{"event": "reply", "id": "3", "ok": true, "result": null, "error": ""}', "id is str"),
        (b'{"event": "reply", "ok": true, "result": null, "error": ""}', "lacks field id"),
        (b'{"event": "reply", "id": 3, "ok": true, "result": 7, "error": ""}', "result is int"),
    ],
)
def test_malformed_messages_are_refused_without_quoting_them(line: bytes, fault: str) -> None:
    with pytest.raises(WireError, match=fault) as refused:
        decode_event(line)
    assert "SECRET" not in str(refused.value)


def test_an_unexpected_field_with_a_plain_name_is_named() -> None:
    line = b'{"event": "disconnected", "reason": "x"}'
    with pytest.raises(WireError, match="unexpected field 'reason'"):
        decode_event(line)


def _lines_of(data: bytes, limit: int) -> list[bytes | Overlong]:
    async def collect() -> list[bytes | Overlong]:
        stream = asyncio.StreamReader()
        stream.feed_data(data)
        stream.feed_eof()
        return [line async for line in read_lines(stream, limit)]

    return asyncio.run(collect())


def test_lines_are_split_and_an_overlong_one_is_skipped_to_its_end() -> None:
    data = b"one\n" + b"x" * 300_000 + b"\ntwo\nthree"
    lines = _lines_of(data, 1000)
    assert lines[0] == b"one\n"
    assert isinstance(lines[1], Overlong) and lines[1].length > 1000
    assert lines[2:] == [b"two\n", b"three"]


def test_a_line_may_be_exactly_as_long_as_the_limit_but_no_longer() -> None:
    assert _lines_of(b"a" * 9 + b"\n" + b"b" * 10 + b"\n", 10) == [b"a" * 9 + b"\n", Overlong(11)]


def test_a_go_time_from_neonize_becomes_unix_seconds() -> None:
    from waqr.engine.child import unix_seconds

    assert unix_seconds(0) == 0.0  # Go's zero time: unknown
    assert unix_seconds(1_800_000_000) == 1_800_000_000.0
    assert unix_seconds(1_800_000_000_123) == 1_800_000_000.123
