"""The real bot and engine with the simulator's other devices: a contact whose phone is
offline (the message is sent, not delivered, until it comes back), and the linked account's
own phone writing to a contact (the engine gets the copy, reported as from me)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import SimThread, bot_on, link
from tests.e2e.test_messaging import (
    CONTACT,
    CONTACT_DIGITS,
    HookReceiver,
    contact_inbox,
    message_status,
)
from tests.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
ACCOUNT_DIGITS = "15550001111"  # the simulator's default phone, which links the bot


def control(sim: SimThread, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = httpx.post(sim.control + path, json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def keys_uploaded(sim: SimThread) -> bool:
    """Whether every linked device has uploaded its prekeys (whatsmeow does it after login)."""
    world = sim.sim.world if sim.sim is not None else None
    assert world is not None
    return sim.call(lambda: all(d.signal_keys for d in world.devices.values()))


def test_a_message_to_an_offline_contact_is_delivered_and_read_when_it_comes_back(
    sim: SimThread, tmp_path: Path
) -> None:
    bot = bot_on(sim, tmp_path / "bot").start()
    try:
        link(sim, bot)
        contact_inbox(sim)  # the contact exists (and has its keys) before waqr writes to it
        assert control(sim, f"/contacts/{CONTACT_DIGITS}/offline")["online"] is False
        refused = httpx.post(
            f"{sim.control}/contacts/{CONTACT_DIGITS}/send", json={"text": "x"}, timeout=30
        )
        assert refused.status_code == 409  # an offline phone sends nothing

        text = "for when you are back"
        accepted = bot.post("/messages", json={"to": CONTACT, "text": text})
        assert accepted.status_code == 202, accepted.text
        message_id = accepted.json()["id"]
        sent = wait_until(
            lambda: (s := message_status(bot, message_id))["status"] == "sent" and s, 60
        )
        wa_id = sent["waMessageId"]
        for _ in range(6):  # a while offline: the server has it, the contact does not
            time.sleep(0.5)
            assert message_status(bot, message_id)["receipt"] == "sent"
            assert contact_inbox(sim) == []

        back = control(sim, f"/contacts/{CONTACT_DIGITS}/online")
        assert back["received"] == [wa_id]
        assert [(m["id"], m["text"]) for m in contact_inbox(sim)] == [(wa_id, text)]
        wait_until(lambda: message_status(bot, message_id)["receipt"] == "delivered", 60)
        control(sim, f"/contacts/{CONTACT_DIGITS}/read", {"id": wa_id})
        wait_until(lambda: message_status(bot, message_id)["receipt"] == "read", 60)
    finally:
        bot.stop()


def test_the_phone_writes_to_a_contact_and_waqr_gets_it_once_as_from_me(
    sim: SimThread, tmp_path: Path
) -> None:
    receiver = HookReceiver()
    receiver.start()
    bot = bot_on(sim, tmp_path / "bot", **receiver.bot_env()).start()
    try:
        device = link(sim, bot)
        wait_until(lambda: keys_uploaded(sim), 30)
        text = "sent from the phone itself"
        sent = control(sim, "/phone/send", {"to": CONTACT, "text": text})
        assert sent["delivered_to"] == [device["jid"]]

        inbox = wait_until(lambda: bot.get("/messages").json()["messages"], 60)
        (incoming,) = inbox
        assert (incoming["id"], incoming["text"], incoming["fromMe"]) == (sent["id"], text, True)
        assert incoming["chat"] == f"{CONTACT_DIGITS}@s.whatsapp.net"
        assert incoming["sender"] == f"{ACCOUNT_DIGITS}@s.whatsapp.net"
        assert [(m["id"], m["text"]) for m in contact_inbox(sim)] == [(sent["id"], text)]

        wait_until(lambda: receiver.events, 60)
        time.sleep(1)  # nothing more (no second copy) comes after
        (event,) = [e for e in receiver.events if e["type"] == "message"]
        assert (event["data"]["id"], event["data"]["fromMe"]) == (sent["id"], True)
        assert event["data"]["chat"] == f"{CONTACT_DIGITS}@s.whatsapp.net"
        assert all(receiver.valid)
        assert len(bot.get("/messages").json()["messages"]) == 1
    finally:
        bot.stop()
        receiver.stop()
