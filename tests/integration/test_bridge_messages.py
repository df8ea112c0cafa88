"""The bridge's inbox route, ``GET /admin/wa/messages``: a real bridge process in front of the
bot's app on a real server in this process, its engine scripted so that contacts write on cue.
The bridge passes the bot's page through unchanged and refuses a bad cursor itself, clearly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_bot_http import QR, Bot
from tests.integration.test_bot_messages import CONTACT_JID, eventually, linked_bot
from tests.integration.test_bridge import BEARER, running_bridge
from tests.procs import ServiceProcess
from tests.scripted_engine import EngineScript
from waqr.engine import protocol as p

pytestmark = pytest.mark.timeout(90)
OTHER_JID = "4915199998888@s.whatsapp.net"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    linked, context = await linked_bot(tmp_path / "bot", EngineScript(QR))
    yield linked
    await context.__aexit__(None, None, None)


@pytest.fixture
async def bridge(bot: Bot, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A bridge process before ``bot``, started and stopped off the loop that serves the bot."""
    with contextlib.ExitStack() as stack:
        url = str(bot.client.base_url).rstrip("/")
        api: ServiceProcess = await asyncio.to_thread(
            stack.enter_context, running_bridge(tmp_path / "api", url)
        )
        async with httpx.AsyncClient(base_url=api.url, headers=BEARER, timeout=15) as client:
            yield client
        await asyncio.to_thread(stack.close)


def incoming(message_id: str, chat: str, text: str, delivery: int) -> p.MessageReceived:
    return p.MessageReceived(
        message_id, chat, chat, "Ada", text, 1764190100.0, None, False, delivery
    )


async def inbox(bridge: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    answer = await bridge.get("/admin/wa/messages", params=params)
    assert answer.status_code == 200, answer.text
    messages: list[dict[str, Any]] = answer.json()["messages"]
    return messages


async def test_the_inbox_pages_through_the_bridge_as_the_bot_keeps_it(
    bot: Bot, bridge: httpx.AsyncClient
) -> None:
    engine = bot.script.current
    engine.emit(
        incoming("M1", CONTACT_JID, "first", 1),
        incoming("M2", OTHER_JID, "zweite ✓", 2),
        incoming("M3", CONTACT_JID, "third", 3),
    )
    await eventually(lambda: engine.persisted_deliveries == [1, 2, 3])

    everything = await inbox(bridge)
    assert [(m["id"], m["chat"], m["text"]) for m in everything] == [
        ("M1", CONTACT_JID, "first"),
        ("M2", OTHER_JID, "zweite ✓"),
        ("M3", CONTACT_JID, "third"),
    ]
    # The bot's own body, field for field: the bridge adds and drops nothing.
    direct = (await bot.client.get("/messages")).json()["messages"]
    assert everything == direct

    first, second, third = (m["seq"] for m in everything)
    assert [m["id"] for m in await inbox(bridge, after=first, limit=1)] == ["M2"]
    assert [m["id"] for m in await inbox(bridge, after=second)] == ["M3"]
    assert await inbox(bridge, after=third) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "-1"}, "after"),
        ({"after": "yesterday"}, "after"),
        ({"after": str(2**63)}, "after"),  # past what the bot's store can compare with
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
    ],
)
async def test_a_bad_cursor_or_limit_is_a_clear_422_naming_the_field(
    bot: Bot, bridge: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    answer = await bridge.get("/admin/wa/messages", params=params)
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert body["detail"].startswith(f"{field}: ")


async def test_the_inbox_needs_the_bearer_token(bot: Bot, bridge: httpx.AsyncClient) -> None:
    answer = await bridge.get("/admin/wa/messages", headers={"Authorization": ""})
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
