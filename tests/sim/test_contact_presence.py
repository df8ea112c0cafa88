"""Contacts that go offline and come back: the server acks and holds what is sent to them, no
receipt until they return; then they get it in order and the receipts follow."""

from __future__ import annotations

import httpx
import pytest

from tests.sim._relay_helpers import ACCOUNT, CapturingSession, DeviceWriter, link_engine
from tests.sim.fake_wa_client import ConnectFactory, login, paired_device
from waqr.sim.node import JID, Node
from waqr.sim.signal.contact import Contact
from waqr.sim.state import LinkedDevice, World
from waqr.sim.users import come_online, go_offline

CONTACT = "4915100000001"


@pytest.fixture
def engine(world: World) -> LinkedDevice:
    return link_engine(world)


@pytest.fixture
def contact(world: World) -> Contact:
    return world.contact(CONTACT)


def _listed_ids(receipt: Node) -> list[str]:
    items = receipt.child("list")
    return [receipt.attr("id")] + [item.attr("id") for item in (items.children if items else [])]


async def test_a_message_to_an_offline_contact_is_acked_and_held_without_a_receipt(
    world: World, engine: LinkedDevice, contact: Contact
) -> None:
    writer = DeviceWriter(world, contact, engine.jid)
    go_offline(world, contact)
    (ack,) = await writer.send("3EB0F1", "are you there?")
    assert (ack.tag, ack.attr("id")) == ("ack", "3EB0F1")
    assert contact.inbox == []
    assert [held.message_id for held in world.offline_contacts[CONTACT]] == ["3EB0F1"]


async def test_a_contact_coming_back_reads_in_order_and_sends_one_delivery_receipt(
    world: World, engine: LinkedDevice, contact: Contact
) -> None:
    writer = DeviceWriter(world, contact, engine.jid)
    await writer.send("3EB0F0", "before")
    go_offline(world, contact)
    for n in range(1, 4):
        await writer.send(f"3EB0F{n}", f"text {n}")
    session = CapturingSession(engine.jid)
    world.attach(session)  # type: ignore[arg-type]

    received = await come_online(world, contact)
    assert [r.message.text for r in received] == ["text 1", "text 2", "text 3"]
    assert [r.message.text for r in contact.inbox] == ["before", "text 1", "text 2", "text 3"]
    (receipt,) = session.sent
    assert (receipt.tag, receipt.attr("type")) == ("receipt", "")  # delivery
    assert receipt.jid("from") == contact.lid  # the address the sender used
    assert _listed_ids(receipt) == ["3EB0F1", "3EB0F2", "3EB0F3"]
    assert CONTACT not in world.offline_contacts
    assert await come_online(world, contact) == []  # already online: nothing new


async def test_a_receipt_for_a_disconnected_sender_waits_for_its_next_login(
    connect: ConnectFactory, world: World
) -> None:
    device = await paired_device(connect, world)
    assert device.jid is not None
    contact = world.contact(CONTACT)
    go_offline(world, contact)
    await DeviceWriter(world, contact, device.jid).send("3EB0F1", "later")

    await come_online(world, contact)  # the sender is not connected
    link, success = await login(connect, device)
    assert success is not None and success.tag == "success"
    (missed,) = link.offline
    assert (missed.tag, missed.attr("id"), missed.attr("type")) == ("receipt", "3EB0F1", "")
    assert world.device_queues == {}  # a receipt, once handed over, is gone


async def test_an_offline_contact_cannot_write_or_read_until_it_comes_back(
    api: httpx.AsyncClient, world: World, engine: LinkedDevice, contact: Contact
) -> None:
    session = CapturingSession(engine.jid)
    world.attach(session)  # type: ignore[arg-type]
    await DeviceWriter(world, contact, engine.jid).send("3EB0F1", "read me later")

    offline = await api.post(f"/contacts/{CONTACT}/offline")
    assert offline.json() == {"number": CONTACT, "online": False, "waiting": 0, "received": []}
    await DeviceWriter(world, contact, engine.jid).send("3EB0F2", "held")
    again = await api.post(f"/contacts/+{CONTACT}/offline")
    assert again.json()["waiting"] == 1
    send = await api.post(f"/contacts/{CONTACT}/send", json={"text": "hi"})
    assert send.status_code == 409
    assert "offline" in send.json()["detail"]
    read = await api.post(f"/contacts/{CONTACT}/read", json={"id": "3EB0F1"})
    assert read.status_code == 409
    assert [m["id"] for m in (await api.get(f"/contacts/{CONTACT}/messages")).json()] == ["3EB0F1"]

    online = await api.post(f"/contacts/{CONTACT}/online")
    assert online.json() == {
        "number": CONTACT,
        "online": True,
        "waiting": 0,
        "received": ["3EB0F2"],
    }
    assert (await api.post(f"/contacts/{CONTACT}/read", json={"id": "3EB0F2"})).status_code == 200
    assert [(n.attr("id"), n.attr("type")) for n in session.sent] == [
        ("3EB0F2", ""),
        ("3EB0F2", "read"),
    ]


@pytest.mark.parametrize("path", ["offline", "online"])
async def test_presence_of_a_bad_number_is_refused_with_422(
    api: httpx.AsyncClient, path: str
) -> None:
    reply = await api.post(f"/contacts/12345/{path}")
    assert reply.status_code == 422


def test_unlinking_a_device_forgets_what_was_held_for_it(
    world: World, engine: LinkedDevice
) -> None:
    world.queue_for_device(engine.jid, Node("receipt", {"id": "3EB0F1"}))
    world.unlink(engine.jid)
    assert world.queued_for(JID(ACCOUNT, "s.whatsapp.net", 7)) == []
