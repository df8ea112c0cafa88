"""When the keepalive nudges the bot: only a disconnected bot that will not act by itself.

The bot's own backoff and whatsmeow's reconnect grace are announced in GET /status as
``retrying`` and ``nextRetryAt``; a nudge inside them would reset the backoff.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from waqr.bridge.keepalive import NUDGE_GRACE, parse_instant, should_nudge

NOW = datetime(2026, 11, 26, 17, 0, 0, tzinfo=UTC).timestamp()


def at(offset: float) -> str:
    """The bot's wire form of the instant ``offset`` seconds from NOW."""
    moment = datetime.fromtimestamp(NOW + offset, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def disconnected(**fields: Any) -> dict[str, Any]:
    return {"status": "disconnected", "connected": False, **fields}


def test_a_bot_that_has_stopped_trying_is_nudged() -> None:
    assert should_nudge(disconnected(retrying=False, nextRetryAt=None), now=NOW)


def test_a_bot_waiting_out_its_backoff_is_left_alone() -> None:
    assert not should_nudge(disconnected(retrying=True, nextRetryAt=at(+30)), now=NOW)


def test_a_bot_inside_the_engines_reconnect_grace_is_left_alone() -> None:
    # The engine is reconnecting by itself; the bot may not know when it will be done.
    assert not should_nudge(disconnected(retrying=True, nextRetryAt=None), now=NOW)


def test_retrying_wins_even_over_an_overdue_retry_time() -> None:
    assert not should_nudge(disconnected(retrying=True, nextRetryAt=at(-3600)), now=NOW)


def test_a_retry_time_just_passed_is_given_the_grace() -> None:
    status = disconnected(retrying=False, nextRetryAt=at(-(NUDGE_GRACE - 1)))
    assert not should_nudge(status, now=NOW)


def test_a_retry_time_overdue_beyond_the_grace_is_nudged() -> None:
    status = disconnected(retrying=False, nextRetryAt=at(-(NUDGE_GRACE + 1)))
    assert should_nudge(status, now=NOW)


def test_a_false_retrying_with_a_future_retry_time_is_still_left_alone() -> None:
    assert not should_nudge(disconnected(retrying=False, nextRetryAt=at(+10)), now=NOW)


@pytest.mark.parametrize(
    ("next_retry_at", "nudged"),
    [(at(+30), False), (at(-1), False), (at(-60), True), (None, True)],
    ids=["retry-ahead", "retry-just-due", "retry-long-overdue", "no-retry"],
)
def test_an_older_bot_without_retrying_is_judged_by_its_retry_time(
    next_retry_at: str | None, nudged: bool
) -> None:
    assert should_nudge(disconnected(nextRetryAt=next_retry_at), now=NOW) is nudged


@pytest.mark.parametrize(
    "state",
    ["connecting", "qr_ready", "pairing_code", "connected", "logged_out", "qr_timeout", "failed"],
)
def test_only_a_disconnected_bot_is_ever_nudged(state: str) -> None:
    assert not should_nudge({"status": state, "retrying": False, "nextRetryAt": None}, now=NOW)


def test_an_unreadable_retry_time_counts_as_none() -> None:
    assert should_nudge(disconnected(retrying=False, nextRetryAt="soon"), now=NOW)


def test_the_grace_is_the_callers_to_choose() -> None:
    status = disconnected(nextRetryAt=at(-20))
    assert not should_nudge(status, now=NOW, grace=30)
    assert should_nudge(status, now=NOW, grace=10)


def test_the_bots_instants_are_read_as_utc() -> None:
    assert parse_instant("2026-11-26T17:00:00.000Z") == NOW
    assert parse_instant("2026-11-26T18:00:00+01:00") == NOW
    assert parse_instant("2026-11-26T17:00:00") == NOW
    assert parse_instant(None) is None
    assert parse_instant(17) is None
    assert parse_instant("") is None
