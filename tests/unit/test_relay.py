"""The relay's fan-out to the bridge's own SSE listeners."""

from __future__ import annotations

import asyncio
import gc

import pytest

from waqr.bot.states import no_qr_answer
from waqr.bridge.cache import MemoryQrCache
from waqr.bridge.relay import SUBSCRIBER_BACKLOG, Event, EventRelay, Subscription


def relay() -> EventRelay:
    return EventRelay(bot=None, cache=MemoryQrCache())  # type: ignore[arg-type]


async def next_event(subscription: Subscription) -> Event:
    return await anext(subscription)


async def test_a_subscription_hears_what_happens_before_it_is_first_read() -> None:
    events = relay()
    subscription = events.subscribe()
    events.publish("state", {"status": "connected"})  # e.g. while a snapshot is taken
    assert await next_event(subscription) == ("state", {"status": "connected"})


async def test_events_arrive_in_order_for_every_subscriber() -> None:
    events = relay()
    first, second = events.subscribe(), events.subscribe()
    await events.apply("state", {"status": "connecting"})
    await events.apply("qr", {"status": "qr_ready", "qr": "ref", "expires_in": 20})
    for subscription in (first, second):
        assert await next_event(subscription) == ("state", {"status": "connecting"})
        assert (await next_event(subscription))[0] == "qr"


async def test_a_closed_subscription_leaves_the_relay() -> None:
    events = relay()
    subscription = events.subscribe()
    assert events.subscribers == 1
    subscription.close()
    assert events.subscribers == 0


async def test_a_subscription_dropped_without_close_leaves_the_relay() -> None:
    events = relay()
    events.subscribe()  # e.g. a response whose stream never started
    gc.collect()
    assert events.subscribers == 0


async def test_a_slow_subscriber_loses_its_oldest_events_never_blocks() -> None:
    events = relay()
    subscription = events.subscribe()
    for n in range(SUBSCRIBER_BACKLOG + 5):
        events.publish("state", {"n": n})
    assert await next_event(subscription) == ("state", {"n": 5})


async def test_the_pushed_qr_is_the_live_code_with_its_lifetime_counted_down_here() -> None:
    events = relay()
    events.connected = True
    await events.apply("state", {"status": "qr_ready"})
    await events.apply("qr", {"status": "qr_ready", "qr": "2@code", "expires_in": 20.0})
    answer = events.pushed_qr()
    assert answer is not None
    assert (answer["status"], answer["qr"]) == ("qr_ready", "2@code")
    assert 0 < answer["expires_in"] <= 20.0


async def test_once_the_pushed_code_ran_out_the_next_push_answers() -> None:
    events = relay()
    events.connected = True
    await events.apply("state", {"status": "qr_ready"})
    await events.apply("qr", {"status": "qr_ready", "qr": "2@old", "expires_in": 0.01})
    await asyncio.sleep(0.05)
    # The bot may hold the next code already: no answer of this side's own...
    assert events.pushed_qr() is None
    waiting = asyncio.ensure_future(events.next_code())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    # ...until the bot's next push, which is the answer.
    await events.apply("qr", {"status": "qr_ready", "qr": "2@new", "expires_in": 20.0})
    answer = await asyncio.wait_for(waiting, 1)
    assert answer is not None and answer["qr"] == "2@new"


async def test_a_next_code_that_does_not_come_in_time_leaves_the_answer_to_the_bot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("waqr.bridge.relay.ROTATION_WAIT", 0.05)
    events = relay()
    events.connected = True
    await events.apply("state", {"status": "qr_ready"})
    await events.apply("qr", {"status": "qr_ready", "qr": "2@old", "expires_in": 0.01})
    assert await asyncio.wait_for(events.next_code(), 1) is None  # a batch that ended


async def test_a_state_change_after_a_code_ran_out_is_answered_from_the_push() -> None:
    events = relay()
    events.connected = True
    await events.apply("state", {"status": "qr_ready"})
    await events.apply("qr", {"status": "qr_ready", "qr": "2@old", "expires_in": 0.01})
    await events.apply("state", {"status": "connecting"})
    # What the bot answers in that state (waqr.bot.states), unasked.
    assert events.pushed_qr() == no_qr_answer("connecting")
    assert events.pushed_qr() == {"status": "connecting", "qr": None, "expires_in": None}


async def test_a_state_without_codes_answers_why_there_is_none() -> None:
    events = relay()
    events.connected = True
    await events.apply("state", {"status": "connected"})
    assert events.pushed_qr() == {"status": "connected", "qr": None, "expires_in": None}


async def test_without_the_bots_stream_there_is_no_pushed_answer() -> None:
    events = relay()
    await events.apply("state", {"status": "qr_ready"})
    await events.apply("qr", {"status": "qr_ready", "qr": "2@code", "expires_in": 20.0})
    assert events.pushed_qr() is None  # not following the bot: only the bot can say
    assert events.pushed_status() is None
