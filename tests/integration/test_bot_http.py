"""The bot's HTTP contract, served by a real uvicorn server on loopback; the engine behind
it is scripted so each answer can be pinned down exactly."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.procs import free_port
from tests.scripted_engine import EngineScript
from waqr.bot.app import create_app
from waqr.bot.registry import SessionRegistry
from waqr.engine import protocol as p
from waqr.settings import load_settings

pytestmark = pytest.mark.timeout(30)

# issued_at=0: the scripted engine stamps it when it emits it.
QR = p.QrIssued(
    code="https://wa.me/settings/linked_devices#2@ref,noise,ident,adv,6", lifetime=60, issued_at=0
)
ME = p.Connected(jid="15550001111@s.whatsapp.net", push_name="Bot")


@dataclass
class Bot:
    client: httpx.AsyncClient
    script: EngineScript
    registry: SessionRegistry
    data_dir: Path

    async def until_status(self, wanted: str) -> dict:
        async with asyncio.timeout(5):
            while (body := (await self.client.get("/status")).json())["status"] != wanted:
                await asyncio.sleep(0.01)
        return body


@asynccontextmanager
async def running_bot(data_dir: Path, script: EngineScript, **env: Any) -> AsyncIterator[Bot]:
    """The bot's app on a real uvicorn server in this process, its engine scripted; ``env``:
    more settings, by environment variable name."""
    settings = load_settings(
        {
            "WAQR_DATA_DIR": str(data_dir),
            "WAQR_RECONNECT_BACKOFF_MIN": 0.01,
            "WAQR_RECONNECT_BACKOFF_MAX": 0.05,
            **env,
        }
    )
    registry = SessionRegistry(settings, make_engine=lambda _config: script())
    registry.open()
    port = free_port()
    config = uvicorn.Config(
        create_app(registry), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield Bot(client, script, registry, data_dir)
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    async with running_bot(tmp_path, EngineScript(QR)) as running:
        yield running


def link(bot: Bot) -> None:
    store = bot.registry.get().store
    with sqlite3.connect(store.db_path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS whatsmeow_device (jid TEXT)")
        db.execute("INSERT INTO whatsmeow_device VALUES ('x')")
    bot.script.current.emit(p.PairSuccess(jid=ME.jid or ""), ME)


async def test_health_is_ok_while_the_session_is_sound(bot: Bot) -> None:
    response = await bot.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "instance": bot.registry.settings.instance_id}


async def test_health_is_503_with_the_cause_once_a_sessions_actor_is_gone(bot: Bot) -> None:
    await bot.until_status("qr_ready")
    actor = bot.registry.get()._actor
    assert actor is not None
    actor.cancel()
    response = await bot.client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "session_unhealthy"
    assert "actor" in body["detail"]
    # Requests to a dead session are a clear 503 too, never a hang.
    reply = await bot.client.post("/reconnect")
    assert reply.status_code == 503
    assert reply.json()["error"] == "session_unavailable"


async def test_status_reports_state_reason_account_and_since(bot: Bot) -> None:
    body = await bot.until_status("qr_ready")
    for key in ("connected", "status", "lastDisconnectReason", "account", "since", "engine"):
        assert key in body
    assert body["connected"] is False
    assert body["qr"]["available"] is True
    link(bot)
    body = await bot.until_status("connected")
    assert body["connected"] is True
    assert body["account"] == {"jid": "15550001111@s.whatsapp.net", "pushName": "Bot"}


async def test_qr_returns_the_engines_code_and_its_lifetime(bot: Bot) -> None:
    await bot.until_status("qr_ready")
    body = (await bot.client.get("/qr")).json()
    assert body["status"] == "qr_ready"
    assert body["qr"] == QR.code
    assert 55 < body["expires_in"] <= 60


async def test_qr_images_render_the_current_code(bot: Bot) -> None:
    await bot.until_status("qr_ready")
    png = await bot.client.get("/qr.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    svg = await bot.client.get("/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content


async def test_qr_images_are_json_errors_when_there_is_no_qr(bot: Bot) -> None:
    bot.script.on_start = []
    await bot.registry.get().reconnect()
    await bot.until_status("connecting")
    missing = await bot.client.get("/qr.png")
    assert missing.status_code == 404
    assert missing.json()["error"] == "no_qr"
    bot.script.current.emit(ME)
    await bot.until_status("connected")
    linked = await bot.client.get("/qr.svg")
    assert linked.status_code == 409
    assert linked.json()["error"] == "already_connected"
    assert (await bot.client.get("/qr")).json() == {
        "status": "connected",
        "qr": None,
        "expires_in": None,
    }


async def test_reconnect_answers_202_at_once_and_overlapping_calls_coalesce(bot: Bot) -> None:
    await bot.until_status("qr_ready")
    link(bot)
    await bot.until_status("connected")
    bot.script.on_start = []  # the new engine stays busy connecting until told otherwise
    replies = await asyncio.gather(*(bot.client.post("/reconnect") for _ in range(20)))
    assert {r.status_code for r in replies} == {202}
    assert sum(not r.json()["coalesced"] for r in replies) == 1
    (await bot.script.wait_for_engine(2)).emit(ME)
    await bot.until_status("connected")
    await asyncio.sleep(0.2)
    assert len(bot.script.engines) == 2
    assert bot.registry.get().store.has_credentials()


async def test_reconnect_with_reset_wipes_credentials(bot: Bot) -> None:
    await bot.until_status("qr_ready")
    link(bot)
    await bot.until_status("connected")
    reply = await bot.client.post("/reconnect", params={"reset": "true"})
    assert reply.status_code == 202
    assert reply.json()["reset"] is True
    body = await bot.until_status("qr_ready")
    assert body["hasCredentials"] is False
    assert not bot.registry.get().store.db_path.exists()


async def test_logout_unlinks_and_offers_a_fresh_link(bot: Bot) -> None:
    await bot.until_status("qr_ready")
    link(bot)
    await bot.until_status("connected")
    reply = await bot.client.post("/logout")
    assert reply.status_code == 200
    assert reply.json()["unlinkedAtWhatsApp"] is True
    body = await bot.until_status("qr_ready")
    assert body["lastDisconnectReason"]["code"] == "logout_requested"


async def test_pair_code_returns_the_engines_code(bot: Bot) -> None:
    await bot.until_status("qr_ready")
    reply = await bot.client.post("/pair-code", json={"phone": "+49 151 12345678"})
    assert reply.status_code == 200
    assert reply.json() == {
        "code": "ABCD-EFGH",
        "phone": "+49*********78",
        "status": "pairing_code",
    }
    assert bot.script.current.paired_with == "4915112345678"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"phone": "4915112345678"}, "must start with '+'"),
        ({"phone": "+49 abc"}, "only digits"),
        # Digits in other scripts pass str.isdigit() but not WhatsApp: refused here, not a 503.
        (
            {"phone": "+\u0664\u0669\u0661\u0665\u0661\u0661\u0662\u0663\u0664\u0665\u0666"},
            "only digits 0-9",
        ),
        (
            {"phone": "+\uff14\uff19\uff11\uff15\uff11\uff11\uff12\uff13\uff14\uff15\uff16"},
            "only digits 0-9",
        ),
        ({"phone": "+49\u00a0151\u00a012345678"}, "only digits 0-9"),  # no-break spaces
        ({"phone": "+123"}, "8 to 15"),
        ({"phone": "+99912345678"}, "unknown country code"),
        ({}, "phone: Field required"),
        ({"phone": 4915112345678}, "phone"),
    ],
)
async def test_malformed_phone_is_a_422_that_says_why(bot: Bot, body: dict, says: str) -> None:
    reply = await bot.client.post("/pair-code", json=body)
    assert reply.status_code == 422
    assert reply.json()["error"] == "invalid_request"
    assert says in reply.json()["detail"]


async def test_pair_code_is_a_409_once_linked(bot: Bot) -> None:
    await bot.until_status("qr_ready")
    link(bot)
    await bot.until_status("connected")
    reply = await bot.client.post("/pair-code", json={"phone": "+4915112345678"})
    assert reply.status_code == 409
    assert reply.json()["error"] == "conflict"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/pair-code", {"content": b"{not json"}, 422),
        ("post", "/pair-code", {"content": b"x" * 10_000}, 422),
        ("post", "/reconnect", {"params": {"reset": "perhaps"}}, 422),
        ("get", "/nope", {}, 404),
        ("delete", "/status", {}, 405),
    ],
)
async def test_bad_requests_get_a_json_4xx(bot: Bot, method, path, kwargs, status) -> None:
    headers = {"content-type": "application/json"}
    reply = await bot.client.request(method.upper(), path, headers=headers, **kwargs)
    assert reply.status_code == status
    assert set(reply.json()) >= {"error", "detail"}


async def test_events_stream_state_changes_and_qr_rotations(bot: Bot) -> None:
    await bot.until_status("qr_ready")
    seen: list[tuple[str, dict]] = []
    async with bot.client.stream("GET", "/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        bot.script.current.emit(p.QrIssued(code="rotated-code", lifetime=20, issued_at=0))
        event = None
        async with asyncio.timeout(5):
            async for line in lines:
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event:
                    seen.append((event, json.loads(line.split(":", 1)[1])))
                    if event == "qr" and seen[-1][1]["qr"] == "rotated-code":
                        break
    assert seen[0][0] == "state"
    assert seen[0][1]["status"] == "qr_ready"
    assert seen[-1][1]["expires_in"] == pytest.approx(20, abs=1)
