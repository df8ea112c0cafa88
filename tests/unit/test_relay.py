"""The relay's fan-out to the bridge's own SSE listeners."""

from __future__ import annotations

import gc

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
