"""The control API's contacts: a contact writes to the linked account, and shows what it got."""

from __future__ import annotations

import httpx
import pytest

from tests.sim._relay_helpers import CapturingSession, DeviceWriter
from waqr.sim.signal import Ciphertext, ProtocolStore, SessionCipher, decode_text
from waqr.sim.signal.prekeys import PublishedKeys
from waqr.sim.state import LinkedDevice, World

ACCOUNT = "15550001111"


@pytest.fixture
def world() -> World:
    return World(default_phone=ACCOUNT)


@pytest.fixture
def device_store() -> ProtocolStore:
    return ProtocolStore.generate(pre_keys=2)


@pytest.fixture
def device(world: World, device_store: ProtocolStore) -> LinkedDevice:
    linked = LinkedDevice(ACCOUNT, 3, "123456789012345", bytes(32), bytes(32))
    linked.signal_keys = PublishedKeys.of(device_store)
    world.link(linked)
    return linked


async def test_a_contact_writes_to_the_connected_device(
    api: httpx.AsyncClient, world: World, device: LinkedDevice, device_store: ProtocolStore
) -> None:
    session = CapturingSession(device.jid)
    world.attach(session)  # type: ignore[arg-type]
    reply = await api.post("/contacts/+49 151 0000 0001/send", json={"text": "hi there"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["delivered_to"] == [str(device.jid)]
    (stanza,) = session.sent
    assert (stanza.tag, stanza.attr("id")) == ("message", body["id"])
    assert stanza.attr("from") == "4915100000001@s.whatsapp.net"
    enc = stanza.child("enc")
    assert enc is not None and enc.attr("type") == "pkmsg" and enc.attr("v") == "2"
    device_side = SessionCipher(device_store, "4915100000001:0")
    assert decode_text(device_side.decrypt(Ciphertext("pkmsg", enc.data))).text == "hi there"

    quoted = await api.post(
        "/contacts/4915100000001/send", json={"text": "and again", "reply_to": "3EB0AB"}
    )
    assert quoted.status_code == 200, quoted.text
    enc = session.sent[-1].child("enc")
    assert enc is not None
    text = decode_text(device_side.decrypt(Ciphertext("pkmsg", enc.data)))
    assert (text.text, text.quoted_id) == ("and again", "3EB0AB")


async def test_writing_to_a_disconnected_device_is_accepted_and_queued_for_it(
    api: httpx.AsyncClient, world: World, device: LinkedDevice
) -> None:
    reply = await api.post("/contacts/4915100000001/send", json={"text": "anyone?"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["delivered_to"], body["queued_for"]) == ([], [str(device.jid)])
    (queued,) = world.queued_for(device.jid)
    assert (queued.tag, queued.attr("id")) == ("message", body["id"])


async def test_writing_to_an_account_with_no_linked_keys_is_a_conflict(
    api: httpx.AsyncClient, world: World
) -> None:
    world.link(LinkedDevice(ACCOUNT, 4, "123456789012345", bytes(32), bytes(32)))  # no keys yet
    reply = await api.post("/contacts/4915100000001/send", json={"text": "anyone?"})
    assert reply.status_code == 409
    assert "no linked device" in reply.json()["detail"]


@pytest.mark.parametrize(
    ("number", "body"),
    [
        ("12345", {"text": "hi"}),
        ("4915100000001", {"text": ""}),
        ("4915100000001", {}),
        ("4915100000001", {"text": "hi", "reply_to": ""}),
    ],
    ids=["short-number", "empty-text", "no-text", "empty-reply-to"],
)
async def test_bad_sends_are_refused_with_422(
    api: httpx.AsyncClient, number: str, body: dict[str, str]
) -> None:
    reply = await api.post(f"/contacts/{number}/send", json=body)
    assert reply.status_code == 422, reply.text


async def test_a_contact_lists_what_linked_devices_sent_it(
    api: httpx.AsyncClient, world: World, device: LinkedDevice
) -> None:
    writer = DeviceWriter(world, world.contact("4915100000001"), device.jid)
    await writer.send("3EB0A1", "first")
    await writer.send("3EB0A2", "second")
    listed = (await api.get("/contacts/4915100000001/messages")).json()
    assert listed == [
        {"id": "3EB0A1", "sender": str(device.jid), "text": "first", "quoted_id": None},
        {"id": "3EB0A2", "sender": str(device.jid), "text": "second", "quoted_id": None},
    ]
    assert (await api.get("/contacts/4915100000002/messages")).json() == []


async def test_a_contact_reads_a_message_and_the_sender_gets_a_read_receipt(
    api: httpx.AsyncClient, world: World, device: LinkedDevice
) -> None:
    contact = world.contact("4915100000001")
    await DeviceWriter(world, contact, device.jid).send("3EB0R1", "please read")

    unknown = await api.post("/contacts/4915100000001/read", json={"id": "3EB0XX"})
    assert unknown.status_code == 404
    read = await api.post("/contacts/4915100000001/read", json={"id": "3EB0R1"})
    assert read.status_code == 200, read.text
    (receipt,) = world.queued_for(device.jid)  # nobody connected: it waits for the login
    assert (receipt.tag, receipt.attr("type"), receipt.attr("id")) == ("receipt", "read", "3EB0R1")
    assert receipt.jid("from") == contact.lid  # the address the sender used

    session = CapturingSession(device.jid)
    world.attach(session)  # type: ignore[arg-type]
    again = await api.post("/contacts/4915100000001/read", json={"id": "3EB0R1"})
    assert again.status_code == 200, again.text
    assert [(n.tag, n.attr("type")) for n in session.sent] == [("receipt", "read")]
    assert world.queued_for(device.jid) == [receipt]  # the first still waits for a login
