"""WhatsApp delivers at least once: a message it hands the engine again (its offline queue
resends what was never acknowledged) is stored, and queued for the webhooks, once."""

from __future__ import annotations

from pathlib import Path

from waqr.bot.messages import MessageStore
from waqr.engine import protocol as p

HOOK = "http://127.0.0.1:9/hook"
CHAT = "4915100000001@s.whatsapp.net"


def _received(message_id: str, delivery: int) -> p.MessageReceived:
    return p.MessageReceived(message_id, CHAT, CHAT, "", "hi", 1.0, None, False, delivery)


def test_a_message_delivered_again_is_stored_and_sent_to_the_webhooks_once(
    tmp_path: Path,
) -> None:
    store = MessageStore(
        tmp_path / "messages.sqlite", webhook_urls=(HOOK,), webhook_kinds=frozenset({"message"})
    )
    try:
        first = store.save_incoming(_received("3EB0AA01", 1))
        again = store.save_incoming(_received("3EB0AA01", 2))  # the next login's redelivery
        assert first is not None and again is None
        assert [m["id"] for m in store.incoming_after(0, 10)] == ["3EB0AA01"]
        (delivery,) = store.due_deliveries(HOOK)
        store.delivered(delivery.seq)
        assert store.due_deliveries(HOOK) == []  # no second delivery was queued behind it
    finally:
        store.close()
