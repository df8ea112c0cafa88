"""Messaging across the engine boundary: the child's message handler holds until the
supervisor says the message is stored, receipts become one event per id, ``send_text``
travels as a command, and the wire checks the new events like any other.

The child's handlers run against neonize-shaped fakes (``SimpleNamespace``); the supervisor
runs a real child process that speaks the pipe protocol. The real engine is in
``tests/e2e/test_messaging_engine.py``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.unit.test_child_engine import HANG_GUARD, Pipes, pipes, received, send_commands
from waqr.engine import protocol as p
from waqr.engine.child import EngineChild
from waqr.engine.supervisor import ChildEngine
from waqr.engine.wire import MAX_LINE, WireError, decode_event, encode_event

pytestmark = pytest.mark.timeout(30)
__all__ = ["pipes"]  # the fixture, imported to be used here


def jid(user: str, server: str = "s.whatsapp.net") -> SimpleNamespace:
    return SimpleNamespace(User=user, Server=server)


def neonize_message(text: str, *, quoted: str = "", from_me: bool = False) -> SimpleNamespace:
    source = SimpleNamespace(Chat=jid("491511112222"), Sender=jid("491511112222"), IsFromMe=from_me)
    info = SimpleNamespace(
        ID="3EB0AA", MessageSource=source, Pushname="Ada", Timestamp=1_700_000_000
    )
    extended = SimpleNamespace(text="", contextInfo=SimpleNamespace(stanzaID=quoted))
    if quoted:
        extended.text, text = text, ""
    return SimpleNamespace(
        Info=info, Message=SimpleNamespace(conversation=text, extendedTextMessage=extended)
    )


async def test_the_message_handler_returns_only_after_the_message_is_persisted(
    pipes: Pipes,
) -> None:
    child = EngineChild({"store_path": "unused", "persist_timeout": 10}, pipes.events)
    handler = asyncio.create_task(child.on_message(None, neonize_message("hi", quoted="3EB0QQ")))
    async with asyncio.timeout(HANG_GUARD):
        while not (events := received(pipes)):
            await asyncio.sleep(0.01)
    assert events == [
        p.MessageReceived(
            id="3EB0AA",
            chat="491511112222@s.whatsapp.net",
            sender="491511112222@s.whatsapp.net",
            push_name="Ada",
            text="hi",
            timestamp=1_700_000_000.0,
            quoted_id="3EB0QQ",
            from_me=False,
            delivery=1,
        )
    ]
    await asyncio.sleep(0.2)
    assert not handler.done()  # whatsmeow's acknowledgement still held
    send_commands(pipes, {"id": 1, "cmd": "persisted", "delivery": 1}, {"id": 2, "cmd": "stop"})
    async with asyncio.timeout(HANG_GUARD):
        await child.serve_commands()
        await handler
    assert child.awaiting == {}


async def test_a_message_never_persisted_fails_its_handler_after_the_timeout(
    pipes: Pipes,
) -> None:
    child = EngineChild({"store_path": "unused", "persist_timeout": 0.2}, pipes.events)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(HANG_GUARD):
            await child.on_message(None, neonize_message("lost?"))
    assert [type(e) for e in received(pipes)] == [p.MessageReceived]


async def test_a_message_without_text_is_not_reported(pipes: Pipes) -> None:
    child = EngineChild({"store_path": "unused"}, pipes.events)
    async with asyncio.timeout(HANG_GUARD):
        await child.on_message(None, neonize_message(""))
    assert received(pipes) == []


async def test_a_receipt_becomes_one_event_per_message_id(pipes: Pipes) -> None:
    child = EngineChild({"store_path": "unused"}, pipes.events)
    source = SimpleNamespace(Chat=jid("491511112222"), IsFromMe=False)
    receipt = SimpleNamespace(
        Type=4, MessageSource=source, Timestamp=1_700_000_001, MessageIDs=["A1", "A2"]
    )
    mine = SimpleNamespace(Type=5, MessageSource=source, Timestamp=0, MessageIDs=["A3"])
    await child.on_receipt(None, receipt)
    await child.on_receipt(None, mine)  # read-self: this account's own phone
    chat = "491511112222@s.whatsapp.net"
    assert received(pipes) == [
        p.ReceiptReceived(message_id="A1", kind="read", chat=chat, timestamp=1_700_000_001.0),
        p.ReceiptReceived(message_id="A2", kind="read", chat=chat, timestamp=1_700_000_001.0),
    ]


def test_message_events_cross_the_wire_unchanged() -> None:
    message = p.MessageReceived("X", "c@s", "s@s", "", "text\nwith ünïcode", 1.5, None, True, 3)
    receipt = p.ReceiptReceived("X", "delivered", "c@s", 2.0)
    assert decode_event(encode_event(message)) == message
    assert decode_event(encode_event(receipt)) == receipt


def test_a_message_event_with_a_wrong_field_type_is_refused() -> None:
    body = {"event": "message", "id": "X", "chat": "c", "sender": "s", "push_name": "",
            "text": ["not", "text"], "timestamp": 1, "quoted_id": None, "from_me": False,
            "delivery": 1}  # fmt: skip
    with pytest.raises(WireError, match="text is list"):
        decode_event(json.dumps(body).encode())


# A child that sends one message, reports the "persisted" it gets back as a receipt event,
# and answers send_text with an id made from what it was asked.
ECHO_CHILD = r"""
import json, sys
out = sys.stdout.buffer
def send(body):
    out.write(json.dumps(body).encode() + b"\n"); out.flush()
sys.stdin.buffer.readline()
send({"event": "message", "id": "M1", "chat": "c@s", "sender": "s@s", "push_name": "",
      "text": "hello", "timestamp": 1.0, "quoted_id": None, "from_me": False, "delivery": 7})
for line in sys.stdin.buffer:
    command = json.loads(line)
    reply = {"event": "reply", "id": command["id"], "ok": True, "result": None, "error": ""}
    if command["cmd"] == "persisted":
        send({"event": "receipt", "message_id": "persisted-%d" % command["delivery"],
              "kind": "delivered", "chat": "c@s", "timestamp": 0})
        continue
    if command["cmd"] == "send_text":
        reply["result"] = "%s|%s|%s" % (command["to"], command["text"], command["reply_to"])
    send(reply)
    if command["cmd"] == "stop":
        sys.exit(0)
"""


async def test_the_supervisor_carries_sends_messages_and_persisted(tmp_path: Path) -> None:
    script = tmp_path / "echo_child.py"
    script.write_text(ECHO_CHILD)
    engine = ChildEngine(
        p.EngineConfig(store_path=str(tmp_path / "store.db")),
        start_timeout=10,
        stop_timeout=2,
        argv=[sys.executable, str(script)],
    )
    await engine.start()
    try:
        events = engine.events()
        async with asyncio.timeout(HANG_GUARD):
            message = await anext(events)
            assert isinstance(message, p.MessageReceived) and message.delivery == 7
            await engine.persisted(message.delivery)
            confirmation: Any = await anext(events)
            assert confirmation.message_id == "persisted-7"
            sent = await engine.send_text("491511112222@s.whatsapp.net", "hi", reply_to="M1")
        assert sent == "491511112222@s.whatsapp.net|hi|M1"
    finally:
        async with asyncio.timeout(HANG_GUARD):
            await engine.stop()


async def test_an_overlong_text_is_cut_to_fit_the_pipe(pipes: Pipes) -> None:
    # A reader of its own: the event is larger than the pipe's buffer, and the child's write
    # blocks until someone reads.
    os.set_blocking(pipes.replies_from, True)
    data = bytearray()

    def drain() -> None:
        while chunk := os.read(pipes.replies_from, 65536):
            data.extend(chunk)
            if data.endswith(b"\n"):
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    child = EngineChild({"store_path": "unused", "persist_timeout": 0.1}, pipes.events)
    with pytest.raises(TimeoutError):  # nobody says persisted here
        await child.on_message(None, neonize_message("\U0001f600" * 100_000))
    reader.join(HANG_GUARD)
    assert len(data) <= MAX_LINE
    event = decode_event(bytes(data))
    assert isinstance(event, p.MessageReceived)
    assert event.text == "\U0001f600" * 65536
