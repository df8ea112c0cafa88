"""The server's side of a linked device writing to a contact: device lists, bundles, relay."""

from __future__ import annotations

import pytest

from tests.sim._relay_helpers import DeviceWriter
from waqr.sim.node import JID, Node
from waqr.sim.relay import deliver, prekey_fetch_answer, usync_answer
from waqr.sim.signal import ProtocolStore
from waqr.sim.signal.prekeys import PublishedKeys, parse_bundle_node
from waqr.sim.state import LinkedDevice, World

OWN_NUMBER = "15550001111"


@pytest.fixture
def world() -> World:
    return World(default_phone=OWN_NUMBER)


@pytest.fixture
def engine(world: World) -> LinkedDevice:
    device = LinkedDevice(OWN_NUMBER, 7, "123456789012345", bytes(32), bytes(32))
    world.link(device)
    return device


def _usync(*jids: JID) -> Node:
    users = [Node("user", {"jid": jid}) for jid in jids]
    query = Node("query", content=[Node("devices", {"version": "2"}), Node("lid")])
    usync = Node(
        "usync", {"mode": "query", "context": "message"}, [query, Node("list", content=users)]
    )
    return Node("iq", {"id": "u1", "xmlns": "usync", "type": "get"}, [usync])


def _answered_users(answer: Node) -> dict[str, tuple[list[str], str]]:
    users = answer.child("usync").child("list").children  # type: ignore[union-attr]
    result = {}
    for user in users:
        devices = user.child("devices").child("device-list").children  # type: ignore[union-attr]
        lid = user.child("lid")
        result[user.attr("jid")] = ([d.attr("id") for d in devices], lid.attr("val") if lid else "")
    return result


def test_device_lists_name_contacts_by_phone_or_lid_and_the_own_phone_and_linked_devices(
    world: World, engine: LinkedDevice
) -> None:
    contact = world.contact("+49 151 0000 0001")
    stranger = JID("4915100000099", "s.whatsapp.net")
    answer = usync_answer(
        world, _usync(contact.jid, contact.lid, JID(OWN_NUMBER, "s.whatsapp.net"), stranger), engine
    )
    assert answer.attr("id") == "u1" and answer.attr("type") == "result"
    assert _answered_users(answer) == {
        str(contact.jid): (["0"], str(contact.lid)),
        str(contact.lid): (["0"], str(contact.lid)),
        f"{OWN_NUMBER}@s.whatsapp.net": (["0", "7"], "123456789012345@lid"),
        str(stranger): ([], ""),
    }


def test_bundles_are_handed_out_with_each_one_time_prekey_once(
    world: World, engine: LinkedDevice
) -> None:
    contact = world.contact("4915100000001")
    engine.signal_keys = PublishedKeys.of(ProtocolStore.generate(pre_keys=1))
    request = Node(
        "iq",
        {"id": "k1", "xmlns": "encrypt", "type": "get"},
        [
            Node(
                "key",
                content=[
                    Node("user", {"jid": contact.lid, "reason": "identity"}),
                    Node("user", {"jid": engine.lid}),
                    Node("user", {"jid": JID("4915100000099", "s.whatsapp.net")}),
                ],
            )
        ],
    )
    first = prekey_fetch_answer(world, request).child("list").children  # type: ignore[union-attr]
    contact_bundle, engine_bundle = parse_bundle_node(first[0]), parse_bundle_node(first[1])
    contact_bundle.verify_signature()
    assert contact_bundle.identity_key == contact.store.identity.public
    assert engine_bundle.pre_key_id == 1 and engine_bundle.device_id == engine.device
    error = first[2].child("error")
    assert error is not None and error.attr("code") == "404"

    again = prekey_fetch_answer(world, request).child("list").children  # type: ignore[union-attr]
    assert parse_bundle_node(again[0]).pre_key_id != contact_bundle.pre_key_id
    assert parse_bundle_node(again[1]).pre_key_id is None  # the engine's only one is gone


def _message(to: JID, enc: Node) -> Node:
    participants = Node(
        "participants", content=[Node("to", {"jid": JID(to.user, to.server, 0)}, [enc])]
    )
    return Node("message", {"id": "3EB0AA", "to": to, "type": "text"}, [participants])


async def test_a_relayed_message_reaches_the_contact_and_comes_back_delivered(
    world: World, engine: LinkedDevice
) -> None:
    contact = world.contact("4915100000001")
    ack, receipt = await DeviceWriter(world, contact, engine.jid).send("3EB0AA", "hello contact")
    assert (ack.tag, ack.attr("class"), ack.attr("id")) == ("ack", "message", "3EB0AA")
    assert ack.jid("from") == contact.lid
    assert (receipt.tag, receipt.attr("id"), receipt.attr("type")) == ("receipt", "3EB0AA", "")
    assert receipt.jid("from") == contact.lid
    (received,) = contact.inbox
    assert (received.sender, received.message_id) == (engine.jid, "3EB0AA")
    assert received.message.text == "hello contact"


async def test_a_message_the_contact_cannot_read_is_still_acked(
    world: World, engine: LinkedDevice
) -> None:
    contact = world.contact("4915100000001")
    enc = Node("enc", {"v": "2", "type": "pkmsg"}, b"\x33not a prekey message")
    (ack,) = await deliver(world, _message(contact.jid, enc), engine.jid)  # and no receipt
    assert ack.attr("id") == "3EB0AA"  # the server cannot read messages; it acks what it relays
    assert contact.inbox == []
