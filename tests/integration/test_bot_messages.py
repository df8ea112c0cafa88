"""The bot's messaging API on a real uvicorn server, with a scripted engine: what is accepted,
what is refused and how, that a retried request sends once, that incoming messages are
stored before the engine is told so, and that accepted sends survive a restart of the bot."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_bot_http import ME, QR, Bot, link
from tests.integration.test_bot_http import running_bot as serve_bot
from tests.scripted_engine import EngineScript
from waqr.engine import protocol as p

pytestmark = pytest.mark.timeout(60)
CONTACT = "+4915111112222"
CONTACT_JID = "4915111112222@s.whatsapp.net"


@asynccontextmanager
async def running_bot(
    data_dir: Path, script: EngineScript, rate: int = 20, **env: Any
) -> AsyncIterator[Bot]:
    """The in-process bot of test_bot_http with a send rate limit; ``env``: more settings."""
    async with serve_bot(data_dir, script, WAQR_SEND_RATE_LIMIT=rate, **env) as bot:
        yield bot


async def linked_bot(data_dir: Path, script: EngineScript, rate: int = 20) -> Any:
    bot_context = running_bot(data_dir, script, rate)
    bot = await bot_context.__aenter__()
    await bot.script.wait_for_engine(1)
    link(bot)
    await bot.until_status("connected")
    return bot, bot_context


async def eventually(check: Callable[[], Any], timeout: float = 10) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := check()):
            await asyncio.sleep(0.02)
    return result


async def listen(bot: Bot, wanted: str, into: list[dict[str, Any]]) -> None:
    """Collect the data of the bot's ``wanted`` SSE events into ``into`` (until cancelled)."""
    async with bot.client.stream("GET", "/events") as stream:
        kind = None
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == wanted:
                into.append(json.loads(line.split(":", 1)[1]))


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    bot, context = await linked_bot(tmp_path, EngineScript(QR), rate=3)
    yield bot
    await context.__aexit__(None, None, None)


async def test_a_send_is_accepted_sent_through_the_engine_and_reports_its_receipts(
    bot: Bot,
) -> None:
    answer = await bot.client.post(
        "/messages", json={"to": CONTACT, "text": "Hallo", "reply_to": "Q1"}
    )
    assert answer.status_code == 202, answer.text
    message_id = answer.json()["id"]
    engine = bot.script.current
    await eventually(lambda: engine.sent)
    assert engine.sent == [(CONTACT_JID, "Hallo", "Q1")]
    sent = await _until(bot, message_id, lambda m: m["status"] == "sent")
    assert sent["waMessageId"] == "3EB0SCRIPTED0001"
    engine.emit(p.ReceiptReceived("3EB0SCRIPTED0001", "delivered", CONTACT_JID, 1.0))
    await _until(bot, message_id, lambda m: m["receipt"] == "delivered")
    engine.emit(p.ReceiptReceived("3EB0SCRIPTED0001", "read", CONTACT_JID, 2.0))
    engine.emit(p.ReceiptReceived("3EB0SCRIPTED0001", "delivered", CONTACT_JID, 3.0))  # late
    await asyncio.sleep(0.2)
    assert (await _until(bot, message_id, lambda m: m["receipt"] == "read"))["receipt"] == "read"


async def _until(bot: Bot, message_id: str, wanted: Callable[[dict[str, Any]], bool]) -> Any:
    async with asyncio.timeout(10):
        while not wanted(body := (await bot.client.get(f"/messages/{message_id}")).json()):
            await asyncio.sleep(0.02)
    return body


async def test_a_retry_with_the_same_idempotency_key_sends_once(bot: Bot) -> None:
    headers = {"Idempotency-Key": "order-17"}
    first = await bot.client.post(
        "/messages", json={"to": CONTACT, "text": "once"}, headers=headers
    )
    again = await bot.client.post(
        "/messages", json={"to": CONTACT, "text": "once"}, headers=headers
    )
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["duplicate"] is True
    await _until(bot, first.json()["id"], lambda m: m["status"] == "sent")
    await asyncio.sleep(0.3)
    assert bot.script.current.sent == [(CONTACT_JID, "once", None)]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"to": "4915111112222", "text": "x"}, "invalid_recipient"),
        ({"to": "+12", "text": "x"}, "invalid_recipient"),
        ({"to": "someone@example.com", "text": "x"}, "invalid_recipient"),
        ({"to": CONTACT, "text": "  "}, "empty_text"),
        ({"to": CONTACT, "text": "x" * 65537}, "text_too_long"),
    ],
)
async def test_bad_sends_are_refused_with_422_naming_the_problem(
    bot: Bot, body: dict[str, str], code: str
) -> None:
    answer = await bot.client.post("/messages", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == code
    assert bot.script.current.sent == []


async def test_sends_past_the_rate_limit_get_429_with_retry_after(bot: Bot) -> None:
    for n in range(3):
        ok = await bot.client.post("/messages", json={"to": CONTACT, "text": f"n{n}"})
        assert ok.status_code == 202
    refused = await bot.client.post("/messages", json={"to": CONTACT, "text": "one too many"})
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_a_send_while_not_linked_is_refused_with_409_and_the_state(tmp_path: Path) -> None:
    async with running_bot(tmp_path, EngineScript(QR)) as bot:
        await bot.until_status("qr_ready")
        answer = await bot.client.post("/messages", json={"to": CONTACT, "text": "x"})
        assert answer.status_code == 409
        assert answer.json()["error"] == "not_linked"
        assert answer.json()["state"] == "qr_ready"


async def test_an_incoming_message_is_stored_before_the_engine_is_told_persisted(
    bot: Bot,
) -> None:
    events: list[dict[str, Any]] = []
    listener = asyncio.create_task(listen(bot, "message", events))
    await asyncio.sleep(0.3)  # the subscription is in place
    engine = bot.script.current
    message = p.MessageReceived("M1", CONTACT_JID, CONTACT_JID, "Ada", "hi", 5.0, None, False, 4)
    engine.emit(message, message)  # WhatsApp delivered it twice
    await eventually(lambda: engine.persisted_deliveries == [4, 4])
    inbox = (await bot.client.get("/messages", params={"direction": "in"})).json()["messages"]
    assert [(m["id"], m["text"], m["pushName"]) for m in inbox] == [("M1", "hi", "Ada")]
    await eventually(lambda: events)
    await asyncio.sleep(0.2)
    listener.cancel()
    assert [e["id"] for e in events] == ["M1"]  # told once
    later = await bot.client.get("/messages", params={"after": inbox[0]["seq"]})
    assert later.json()["messages"] == []
    path = bot.data_dir / "messages" / "default.sqlite"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_an_accepted_send_survives_a_restart_and_is_sent_once(tmp_path: Path) -> None:
    script = EngineScript(QR)
    bot, context = await linked_bot(tmp_path, script)
    script.send_gate.clear()  # the engine never finishes the send: the bot stops first
    accepted = await bot.client.post("/messages", json={"to": CONTACT, "text": "later"})
    assert accepted.status_code == 202
    message_id = accepted.json()["id"]
    await eventually(lambda: script.send_gate.is_set() is False and len(script.engines) == 1)
    await context.__aexit__(None, None, None)
    assert script.current.sent == []

    bot, context = await linked_bot(tmp_path, EngineScript(ME))
    try:
        done = await _until(bot, message_id, lambda m: m["status"] == "sent")
        assert done["to"] == CONTACT_JID
        assert bot.script.current.sent == [(CONTACT_JID, "later", None)]
    finally:
        await context.__aexit__(None, None, None)


async def test_a_receipt_that_beats_the_engines_answer_is_kept_and_sent_is_told_first(
    bot: Bot,
) -> None:
    events: list[dict[str, Any]] = []
    listener = asyncio.create_task(listen(bot, "receipt", events))
    await asyncio.sleep(0.3)
    script = bot.script
    script.send_gate.clear()  # the engine's answer to send_text is held back
    answer = await bot.client.post("/messages", json={"to": CONTACT, "text": "race"})
    message_id = answer.json()["id"]
    await eventually(lambda: script.current.sent == [] and True)
    # WhatsApp's delivery receipt for the id the engine will answer with comes first.
    script.current.emit(p.ReceiptReceived("3EB0SCRIPTED0001", "delivered", CONTACT_JID, 1.0))
    await asyncio.sleep(0.3)
    script.send_gate.set()
    done = await _until(bot, message_id, lambda m: m["receipt"] == "delivered")
    assert done["waMessageId"] == "3EB0SCRIPTED0001"
    await eventually(lambda: len(events) == 2)
    listener.cancel()
    assert [e["receipt"] for e in events] == ["sent", "delivered"]


async def test_an_inbox_cursor_past_what_the_store_holds_is_422_not_a_crash(bot: Bot) -> None:
    # seq is a SQLite INTEGER: 2**63 cannot even be compared with one.
    answer = await bot.client.get("/messages", params={"after": str(2**63)})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("after: ")
    assert (await bot.client.get("/messages", params={"after": str(2**63 - 1)})).json() == {
        "messages": []
    }
