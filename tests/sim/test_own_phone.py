"""The linked account's own phone as a Signal device (device 0): it is in its account's device
list with a bundle, it gets the deviceSentMessage copies of what a linked device sends, and what
it sends to a contact reaches the linked devices as ``<message from=phone recipient=contact>``."""

from __future__ import annotations

import httpx
import pytest

from tests.sim._relay_helpers import CapturingSession
from waqr.sim.node import JID, Node
from waqr.sim.relay import deliver, prekey_fetch_answer
from waqr.sim.signal import Ciphertext, ProtocolStore, SessionCipher, decode_text, encode_text
from waqr.sim.signal.prekeys import PublishedKeys, parse_bundle_node
from waqr.sim.state import LinkedDevice, Phone, World

ACCOUNT = "15550001111"
CONTACT = "4915100000001"
PHONE_JID = JID(ACCOUNT, "s.whatsapp.net")  # device 0 prints without ":0"


@pytest.fixture
def world() -> World:
    return World(default_phone=ACCOUNT)


@pytest.fixture
def phone(world: World) -> Phone:
    return world.phone()


@pytest.fixture
def device_store() -> ProtocolStore:
    return ProtocolStore.generate(pre_keys=2)


@pytest.fixture
def engine(world: World, phone: Phone, device_store: ProtocolStore) -> LinkedDevice:
    device = LinkedDevice(ACCOUNT, 7, phone.lid_user, bytes(32), bytes(32))
    device.signal_keys = PublishedKeys.of(device_store)
    world.link(device)
    return device


def _copy_of(stanza: Node, device_store: ProtocolStore, sender_address: str) -> tuple[str, str]:
    enc = stanza.child("enc")
    assert enc is not None and enc.attr("type") in ("pkmsg", "msg")
    cipher = SessionCipher(device_store, sender_address)
    text = decode_text(cipher.decrypt(Ciphertext(enc.attr("type"), enc.data)))  # type: ignore[arg-type]
    assert text.destination is not None
    return text.text, text.destination


def test_the_phone_hands_out_its_bundle_by_number_and_by_lid(world: World, phone: Phone) -> None:
    users = [Node("user", {"jid": PHONE_JID}), Node("user", {"jid": JID(phone.lid_user, "lid")})]
    request = Node(
        "iq", {"id": "k1", "xmlns": "encrypt", "type": "get"}, [Node("key", content=users)]
    )
    answered = prekey_fetch_answer(world, request).child("list").children  # type: ignore[union-attr]
    bundles = [parse_bundle_node(user) for user in answered]
    for bundle in bundles:
        bundle.verify_signature()
        assert bundle.identity_key == phone.signal.store.identity.public
    assert bundles[0].pre_key_id != bundles[1].pre_key_id  # each one-time prekey once


async def test_the_phone_keeps_the_copy_a_linked_device_sent_of_its_message(
    world: World, phone: Phone, engine: LinkedDevice
) -> None:
    contact = world.contact(CONTACT)
    engine_side = SessionCipher(ProtocolStore.generate(), "phone")
    engine_side.start_session(phone.signal.published.hand_out(0))
    copy = engine_side.encrypt(encode_text("hello", destination=str(contact.jid)))
    enc = Node("enc", {"v": "2", "type": copy.kind}, copy.serialized)
    participants = Node("participants", content=[Node("to", {"jid": PHONE_JID}, [enc])])
    message = Node("message", {"id": "3EB0C1", "to": contact.jid}, [participants])

    (ack,) = await deliver(world, message, engine.jid)  # the phone sends no delivery receipt
    assert ack.attr("id") == "3EB0C1"
    (kept,) = phone.signal.inbox
    assert (kept.sender, kept.message.text) == (engine.jid, "hello")
    assert kept.message.destination == str(contact.jid)
    assert contact.inbox == []


async def test_the_phone_writes_to_a_contact_and_the_linked_device_gets_the_copy(
    api: httpx.AsyncClient, world: World, engine: LinkedDevice, device_store: ProtocolStore
) -> None:
    session = CapturingSession(engine.jid)
    world.attach(session)  # type: ignore[arg-type]
    reply = await api.post("/phone/send", json={"to": "+49 151 0000 0001", "text": "from my phone"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["delivered_to"] == [str(engine.jid)]

    (stanza,) = session.sent
    assert (stanza.tag, stanza.attr("id"), stanza.attr("type")) == ("message", body["id"], "text")
    assert stanza.jid("from") == PHONE_JID
    assert stanza.jid("recipient") == JID(CONTACT, "s.whatsapp.net")
    text, destination = _copy_of(stanza, device_store, f"{ACCOUNT}:0")
    assert (text, destination) == ("from my phone", f"{CONTACT}@s.whatsapp.net")

    (received,) = world.contact(CONTACT).inbox
    assert (received.message_id, received.sender) == (body["id"], PHONE_JID)
    assert received.message.text == "from my phone" and received.message.destination is None
    read = await api.post(f"/contacts/{CONTACT}/read", json={"id": body["id"]})
    assert read.status_code == 200  # read on the phone, which is always online
    assert len(session.sent) == 1  # receipts for the phone's message are the phone's

    second = await api.post("/phone/send", json={"to": CONTACT, "text": "and more"})
    assert second.status_code == 200
    assert _copy_of(session.sent[-1], device_store, f"{ACCOUNT}:0")[0] == "and more"
    assert [m.message.text for m in world.contact(CONTACT).inbox] == ["from my phone", "and more"]


async def test_the_copy_for_a_disconnected_device_waits_for_its_login(
    api: httpx.AsyncClient, world: World, engine: LinkedDevice, device_store: ProtocolStore
) -> None:
    reply = await api.post("/phone/send", json={"to": CONTACT, "text": "while you were away"})
    assert reply.status_code == 200
    (held,) = world.queued_for(engine.jid)
    assert held.attr("id") == reply.json()["id"]
    assert _copy_of(held, device_store, f"{ACCOUNT}:0")[0] == "while you were away"


async def test_the_phone_writing_to_an_offline_contact_is_delivered_when_it_returns(
    api: httpx.AsyncClient, world: World, engine: LinkedDevice
) -> None:
    await api.post(f"/contacts/{CONTACT}/offline")
    sent = (await api.post("/phone/send", json={"to": CONTACT, "text": "later"})).json()
    assert world.contact(CONTACT).inbox == []
    online = await api.post(f"/contacts/{CONTACT}/online")
    assert online.json()["received"] == [sent["id"]]
    assert world.device_queues.keys() == {engine.jid}  # the copy only; no receipt to hold


@pytest.mark.parametrize(
    "body",
    [{"to": "12345", "text": "hi"}, {"to": CONTACT, "text": ""}, {"to": CONTACT}, {"text": "hi"}],
    ids=["short-number", "empty-text", "no-text", "no-recipient"],
)
async def test_bad_phone_sends_are_refused_with_422(
    api: httpx.AsyncClient, body: dict[str, str]
) -> None:
    assert (await api.post("/phone/send", json=body)).status_code == 422
