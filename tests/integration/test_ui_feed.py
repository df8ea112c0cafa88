"""The UI's feed (one per Streamlit process) and messages: a real bridge process before a
stand-in bot whose inbox and events the test sets. The feed reads the inbox once per stream,
to catch up, and then follows ``message`` and ``receipt`` events without asking again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_bridge import TOKEN, StandInBot, running_bridge
from tests.procs import ServiceProcess, wait_until
from waqr.ui.client import BridgeClient
from waqr.ui.feed import INBOX_KEEP, INBOX_PAGE, BridgeFeed

pytestmark = pytest.mark.timeout(90)
CHAT = "4915133334444@s.whatsapp.net"
CONNECTED = {"status": "connected", "connected": True}


def message(seq: int) -> dict[str, Any]:
    return {"seq": seq, "id": f"M{seq}", "chat": CHAT, "sender": CHAT, "text": f"text {seq}"}


def inbox_reads(bot: StandInBot) -> list[str]:
    return [r for r in bot.requests if r.startswith("GET /messages")]


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[tuple[StandInBot, ServiceProcess]]:
    with (
        StandInBot() as bot,
        running_bridge(tmp_path / "api", bot.url, KEEPALIVE_INTERVAL="3600") as api,
    ):
        bot.status = CONNECTED
        yield bot, api


@pytest.fixture
def feed(backend: tuple[StandInBot, ServiceProcess]) -> Iterator[BridgeFeed]:
    _bot, api = backend
    client = BridgeClient(api.url, TOKEN)
    running = BridgeFeed(client, poll_every=0.2)
    yield running
    running.stop()
    client.close()


def shown_seqs(feed: BridgeFeed) -> list[int]:
    return [m["seq"] for m in feed.snapshot().inbox]


def test_the_feed_catches_up_page_by_page_then_follows_message_events(
    backend: tuple[StandInBot, ServiceProcess], feed: BridgeFeed
) -> None:
    bot, _api = backend
    held = 2 * INBOX_PAGE + 5
    bot.inbox = [message(seq) for seq in range(1, held + 1)]
    feed.start()
    wait_until(lambda: feed.snapshot().live and shown_seqs(feed), 20)
    assert shown_seqs(feed) == list(range(held - INBOX_KEEP + 1, held + 1))
    assert inbox_reads(bot) == [
        f"GET /messages?direction=in&after={after}&limit={INBOX_PAGE}"
        for after in (0, INBOX_PAGE, 2 * INBOX_PAGE)
    ]

    bot.push("message", message(held + 1))
    bot.push("message", message(held + 1))  # told twice (a second relay): shown once
    bot.push("message", message(3))  # an old one again: not shown
    wait_until(lambda: shown_seqs(feed)[-1] == held + 1, 10)
    bot.push("state", {**CONNECTED, "seq": "a change"})  # a later event is handled after them
    wait_until(lambda: feed.snapshot().status == {**CONNECTED, "seq": "a change"}, 10)
    assert shown_seqs(feed) == list(range(held - INBOX_KEEP + 2, held + 2))
    assert len(inbox_reads(bot)) == 3  # followed, not asked again


def test_receipts_of_sent_messages_arrive_as_events(
    backend: tuple[StandInBot, ServiceProcess], feed: BridgeFeed
) -> None:
    bot, _api = backend
    feed.start()
    wait_until(lambda: feed.snapshot().live, 20)
    sent = {"id": "msg_1", "to": CHAT, "status": "sent", "waMessageId": "3EB0", "error": None}
    for receipt in ("sent", "delivered", "read"):
        bot.push("receipt", {**sent, "receipt": receipt})
        wait_until(
            lambda r=receipt: feed.snapshot().receipts.get("msg_1", {}).get("receipt") == r, 10
        )
    bot.push("receipt", {**sent, "id": "msg_2", "receipt": "sent"})
    wait_until(lambda: "msg_2" in feed.snapshot().receipts, 10)
    assert feed.snapshot().receipts["msg_1"]["receipt"] == "read"


def test_a_new_stream_catches_up_on_what_came_while_none_was_held(
    backend: tuple[StandInBot, ServiceProcess], feed: BridgeFeed
) -> None:
    bot, api = backend
    bot.inbox = [message(1), message(2)]
    feed.start()
    wait_until(lambda: feed.snapshot().live and shown_seqs(feed) == [1, 2], 20)
    api.stop()
    wait_until(lambda: not feed.snapshot().live, 20)
    bot.inbox += [message(3), message(4)]  # arrived while the UI could not hear
    api.start()
    wait_until(lambda: feed.snapshot().live and shown_seqs(feed) == [1, 2, 3, 4], 30)
    # From where it was: the first two are not read again.
    assert inbox_reads(bot)[0].endswith("after=0&limit=500")
    assert all("after=2&" in r for r in inbox_reads(bot)[1:])


def test_an_inbox_the_bridge_cannot_read_is_said_and_read_again_at_the_next_message(
    tmp_path: Path,
) -> None:
    with (
        StandInBot() as bot,
        running_bridge(tmp_path / "api", bot.url, WAQR_BOT_TIMEOUT="2") as api,
    ):
        bot.status = CONNECTED
        bot.inbox = [message(1)]
        bot.hold("/messages")  # the bot does not answer the inbox in time
        client = BridgeClient(api.url, TOKEN, timeout=30)
        feed = BridgeFeed(client).start()
        try:
            wait_until(lambda: feed.snapshot().inbox_error is not None, 40)
            snapshot = feed.snapshot()
            assert snapshot.state == "connected" and snapshot.error is None
            assert snapshot.inbox_error is not None
            assert snapshot.inbox_error.kind == "bot_slow"
            assert snapshot.inbox == ()

            bot.release("/messages")
            bot.inbox.append(message(2))
            bot.push("message", message(2))  # what came before it is read too
            wait_until(lambda: shown_seqs(feed) == [1, 2], 20)
            assert feed.snapshot().inbox_error is None
        finally:  # the stand-in bot releases a request still held as it stops
            feed.stop()
            client.close()
