"""Webhooks from the bot to a real receiver (an HTTP server on loopback), the engine scripted:
every event arrives signed, once by id, in order per chat; a receiver that is down gets
everything after it comes back; a delivery given up is listed and can be replayed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.integration.test_bot_http import QR, Bot, link
from tests.integration.test_bot_messages import eventually, running_bot
from tests.integration.test_bridge import BEARER, OTHER_TOKEN, TOKEN
from tests.procs import ServiceProcess, free_port
from tests.scripted_engine import EngineScript
from waqr.bot.webhooks import verify
from waqr.engine import protocol as p

pytestmark = pytest.mark.timeout(90)
SECRET = "whsec-" + "k7Qz2pLm9Xv4Rt8Wn3Yb6Hc1Jd5Fg0Se"


@dataclass
class Receiver:
    """A webhook receiver on loopback that checks every signature and can go down."""

    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    answer: int = 200
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        stamp = request.headers["X-Waqr-Timestamp"]
        if not verify(SECRET, stamp, body, request.headers["X-Waqr-Signature"]):
            self.bad_signatures += 1
            return Response(status_code=401)
        if self.answer == 200:
            event = json.loads(body)
            assert request.headers["X-Waqr-Event-Id"] == event["id"]
            self.received.append(event)
        return Response(status_code=self.answer)

    async def up(self) -> None:
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        self.server = uvicorn.Server(config)
        self.serving = asyncio.create_task(self.server.serve())
        async with asyncio.timeout(10):
            while not self.server.started:
                await asyncio.sleep(0.01)

    async def down(self) -> None:
        assert self.server is not None and self.serving is not None
        self.server.should_exit = True
        await self.serving

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e["type"] == kind]


@asynccontextmanager
async def bot_with_webhooks(data_dir: Path, receiver: Receiver, **env: Any) -> AsyncIterator[Bot]:
    """A linked bot (scripted engine) that delivers webhooks to ``receiver``."""
    hooks = {
        "WAQR_WEBHOOK_URLS": receiver.url,
        "WAQR_WEBHOOK_SECRET": SECRET,
        "WAQR_WEBHOOK_BACKOFF_MAX": 0.3,
    }
    async with running_bot(data_dir, EngineScript(QR), **hooks, **env) as bot:
        await bot.script.wait_for_engine(1)
        link(bot)
        await bot.until_status("connected")
        yield bot


def bridge_env(bot_url: str) -> dict[str, str]:
    return {"WA_QR_BRIDGE_TOKEN": f"{TOKEN},{OTHER_TOKEN}", "BOT_URL": bot_url.rstrip("/")}


def text_message(chat: int, n: int) -> p.MessageReceived:
    jid = f"49151000000{chat:02d}@s.whatsapp.net"
    return p.MessageReceived(f"M{chat}-{n}", jid, jid, "", f"chat {chat} #{n}", 1.0, None, False, n)


def texts_by_chat(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    chats: dict[str, list[str]] = {}
    for event in events:
        chats.setdefault(event["data"]["chat"], []).append(event["data"]["text"])
    return chats


async def test_messages_arrive_signed_once_and_in_order_per_chat_across_an_outage(
    tmp_path: Path,
) -> None:
    receiver = Receiver()
    await receiver.up()
    async with bot_with_webhooks(tmp_path, receiver) as bot:
        engine = bot.script.current
        engine.emit(text_message(1, 0), text_message(2, 0))
        await eventually(lambda: len(receiver.received) == 2)

        await receiver.down()
        burst = [text_message(chat, n) for n in range(1, 21) for chat in (1, 2, 3)]
        engine.emit(*burst)
        engine.emit(text_message(1, 5))  # WhatsApp delivered one again
        await eventually(lambda: len(engine.persisted_deliveries) == 2 + len(burst) + 1)
        await asyncio.sleep(1.5)  # several retries fail meanwhile
        await receiver.up()
        await eventually(lambda: len(receiver.received) == 2 + len(burst), timeout=30)
        await asyncio.sleep(0.5)
    await receiver.down()

    assert receiver.bad_signatures == 0
    ids = [e["id"] for e in receiver.received]
    assert len(set(ids)) == len(ids) == 2 + len(burst)
    chats = texts_by_chat(receiver.of("message"))
    for chat in (1, 2, 3):
        expected = [f"chat {chat} #{n}" for n in range(0 if chat < 3 else 1, 21)]
        assert chats[f"49151000000{chat:02d}@s.whatsapp.net"] == expected


async def test_receipts_go_out_by_webhook(tmp_path: Path) -> None:
    receiver = Receiver()
    await receiver.up()
    async with bot_with_webhooks(tmp_path, receiver) as bot:
        sent = await bot.client.post("/messages", json={"to": "+4915111112222", "text": "hi"})
        message_id = sent.json()["id"]
        await eventually(lambda: receiver.of("receipt"))
        wa_id = receiver.of("receipt")[0]["data"]["waMessageId"]
        bot.script.current.emit(p.ReceiptReceived(wa_id, "delivered", "x@s.whatsapp.net", 1.0))
        await eventually(lambda: len(receiver.of("receipt")) == 2)
    await receiver.down()
    steps = [(e["data"]["id"], e["data"]["receipt"]) for e in receiver.of("receipt")]
    assert steps == [(message_id, "sent"), (message_id, "delivered")]


async def test_a_delivery_given_up_is_listed_and_replayed(tmp_path: Path) -> None:
    receiver = Receiver(answer=500)
    await receiver.up()
    async with bot_with_webhooks(tmp_path, receiver, WAQR_WEBHOOK_RETRY_PERIOD=1) as bot:
        bot.script.current.emit(text_message(1, 0))

        async def failed() -> list[dict[str, Any]]:
            body: dict[str, Any] = (await bot.client.get("/webhooks/failed")).json()
            return body["failed"]

        async with asyncio.timeout(20):
            while not (listed := await failed()):
                await asyncio.sleep(0.1)
        assert listed[0]["type"] == "message"
        assert listed[0]["lastError"] == "answered 500"
        assert listed[0]["attempts"] >= 2
        assert receiver.received == []
        receiver.answer = 200
        # Through the bridge, as an operator would: listed, then replayed.
        bridge = await asyncio.to_thread(
            ServiceProcess(
                tmp_path / "api", env=bridge_env(str(bot.client.base_url)), command="api"
            ).start
        )
        try:
            via_bridge = await asyncio.to_thread(
                bridge.get, "/admin/wa/webhooks/failed", headers=BEARER
            )
            assert [f["eventId"] for f in via_bridge.json()["failed"]] == [listed[0]["eventId"]]
            replay = await asyncio.to_thread(
                bridge.post, "/admin/wa/webhooks/failed/replay", headers=BEARER
            )
            assert replay.json() == {"replayed": 1}
        finally:
            await asyncio.to_thread(bridge.stop)
        await eventually(lambda: receiver.received)
        assert await failed() == []
    await receiver.down()
    assert [e["data"]["text"] for e in receiver.received] == ["chat 1 #0"]


async def test_state_changes_and_qr_rotations_go_out_when_chosen(tmp_path: Path) -> None:
    receiver = Receiver()
    await receiver.up()
    async with bot_with_webhooks(tmp_path, receiver, WAQR_WEBHOOK_EVENTS="state,qr") as bot:
        await eventually(
            lambda: any(e["data"]["status"] == "connected" for e in receiver.of("state"))
        )
        bot.script.current.emit(text_message(1, 0))  # not chosen: stays out
        await eventually(lambda: bot.script.current.persisted_deliveries == [0])
        await asyncio.sleep(0.5)
    await receiver.down()
    assert receiver.of("qr") and receiver.of("qr")[0]["data"]["qr"] == QR.code
    assert receiver.of("message") == []
    statuses = [e["data"]["status"] for e in receiver.of("state")]
    assert statuses.index("qr_ready") < statuses.index("connected")
