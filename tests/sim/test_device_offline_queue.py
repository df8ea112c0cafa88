"""A linked device's offline queue: what a contact writes while the device is not connected is
accepted and held; at its next login it gets it in order, marked ``offline``, then
``<ib><offline count=N/></ib>``. A message stays queued until the device acknowledges it, so
one sent to a connection that dropped first comes again at the next login (at-least-once)."""

from __future__ import annotations

import asyncio

import pytest

from tests.sim._relay_helpers import CapturingSession
from tests.sim.fake_wa_client import (
    ClientLink,
    ConnectFactory,
    FakeDevice,
    client_iq,
    login,
    paired_device,
)
from waqr.sim.node import JID, Node
from waqr.sim.relay import hand_to_device
from waqr.sim.signal import Ciphertext, ProtocolStore, SessionCipher, decode_text
from waqr.sim.signal.contact import Contact
from waqr.sim.signal.prekeys import PublishedKeys
from waqr.sim.state import World
from waqr.sim.users import send_from_contact

CONTACT = "4915100000001"


@pytest.fixture
def device_store() -> ProtocolStore:
    return ProtocolStore.generate(pre_keys=2)


@pytest.fixture
async def device(connect: ConnectFactory, world: World, device_store: ProtocolStore) -> FakeDevice:
    """A linked device that uploaded its keys and is not connected."""
    paired = await paired_device(connect, world)
    assert paired.jid is not None
    linked = world.device_named(paired.jid)
    assert linked is not None
    linked.signal_keys = PublishedKeys.of(device_store)
    return paired


@pytest.fixture
def contact(world: World) -> Contact:
    return world.contact(CONTACT)


def _jid(device: FakeDevice) -> JID:
    assert device.jid is not None
    return device.jid


async def _write(world: World, contact: Contact, device: FakeDevice, *texts: str) -> list[str]:
    """The contact writes each text to the account; the ids the server accepted."""
    ids = []
    for text in texts:
        sent = await send_from_contact(world, contact, _jid(device).user, text)
        ids.append(sent.message_id)
    return ids


def _texts(stanzas: list[Node], device_store: ProtocolStore) -> list[str]:
    """What the device reads in the ``<message>`` stanzas, decrypting in order."""
    cipher = SessionCipher(device_store, f"{CONTACT}:0")
    texts = []
    for stanza in stanzas:
        enc = stanza.child("enc")
        assert enc is not None
        kind = "pkmsg" if enc.attr("type") == "pkmsg" else "msg"
        texts.append(decode_text(cipher.decrypt(Ciphertext(kind, enc.data))).text)
    return texts


async def _logged_in(connect: ConnectFactory, device: FakeDevice) -> ClientLink:
    link, success = await login(connect, device)  # reads on to <ib><offline/>: catch_up
    assert success is not None and success.tag == "success"
    return link


async def _acknowledge(link: ClientLink, node: Node) -> None:
    """Send ``node`` and wait until the server has read it (it answers the ping after it)."""
    link.send(node)
    await link.query(client_iq("sync", "w:p", "get"))


async def _disconnect(link: ClientLink, world: World, device: FakeDevice) -> None:
    link.conn.client_close()
    while any(True for _ in world.sessions_of(_jid(device))):
        await asyncio.sleep(0)  # the server's read loop sees the end and detaches


async def test_texts_to_a_disconnected_device_are_accepted_and_handed_over_at_login_in_order(
    connect: ConnectFactory,
    world: World,
    device: FakeDevice,
    contact: Contact,
    device_store: ProtocolStore,
) -> None:
    ids = await _write(world, contact, device, "one", "two", "three")
    assert [n.attr("id") for n in world.queued_for(_jid(device))] == ids

    link = await _logged_in(connect, device)
    assert [n.attr("id") for n in link.offline] == ids  # and then <ib><offline count="3"/>
    assert all(n.tag == "message" and n.attr("offline") == "1" for n in link.offline)
    assert _texts(link.offline, device_store) == ["one", "two", "three"]
    assert all("offline" not in n.attrs for n in world.queued_for(_jid(device)))


async def test_a_login_with_nothing_queued_still_ends_its_offline_sync(
    connect: ConnectFactory, world: World, device: FakeDevice
) -> None:
    link, success = await login(connect, device)
    assert success is not None and success.tag == "success"
    assert link.offline == []  # catch_up read <ib><offline count="0"/>


async def test_a_message_the_device_never_acknowledged_is_handed_over_again(
    connect: ConnectFactory,
    world: World,
    device: FakeDevice,
    contact: Contact,
    device_store: ProtocolStore,
) -> None:
    link = await _logged_in(connect, device)
    first, second = await _write(world, contact, device, "got it", "lost in the crash")
    live = [await link.recv(), await link.recv()]
    assert [n.attr("id") for n in live if n is not None] == [first, second]
    assert all("offline" not in n.attrs for n in live if n is not None)
    await _acknowledge(link, Node("receipt", {"id": first, "to": contact.jid}))
    await _disconnect(link, world, device)  # killed before it acknowledged the second

    again = await _logged_in(connect, device)
    (redelivered,) = again.offline
    assert (redelivered.attr("id"), redelivered.attr("offline")) == (second, "1")
    assert redelivered.child("enc") == live[1].child("enc")  # the same ciphertext, once more
    assert _texts(live, device_store) == ["got it", "lost in the crash"]


async def test_a_socket_that_fails_during_the_handover_loses_nothing(
    connect: ConnectFactory, world: World, device: FakeDevice, contact: Contact
) -> None:
    ids = await _write(world, contact, device, "a", "b")
    link = await _logged_in(connect, device)
    await _disconnect(link, world, device)  # got both, acknowledged neither
    assert [n.attr("id") for n in (await _logged_in(connect, device)).offline] == ids


@pytest.mark.parametrize(
    ("acknowledgement", "settles"),
    [
        ({"tag": "receipt", "type": ""}, True),
        ({"tag": "receipt", "type": "inactive"}, True),  # whatsmeow without presence
        ({"tag": "ack", "class": "message"}, True),  # what whatsmeow could not decrypt
        ({"tag": "receipt", "type": "retry"}, False),
        ({"tag": "receipt", "type": "read"}, False),
        ({"tag": "ack", "class": "receipt"}, False),
    ],
    ids=["delivery", "inactive", "message-ack", "retry", "read", "receipt-ack"],
)
async def test_only_a_delivery_receipt_or_a_message_ack_takes_a_message_off_the_queue(
    connect: ConnectFactory,
    world: World,
    device: FakeDevice,
    contact: Contact,
    acknowledgement: dict[str, str],
    settles: bool,
) -> None:
    (message_id,) = await _write(world, contact, device, "hello")
    link = await _logged_in(connect, device)
    tag = acknowledgement.pop("tag")
    attrs = {k: v for k, v in acknowledgement.items() if v}
    await _acknowledge(link, Node(tag, {"id": message_id, "to": contact.jid, **attrs}))
    queued = [n.attr("id") for n in world.queued_for(_jid(device))]
    assert queued == ([] if settles else [message_id])


async def test_one_receipt_listing_several_ids_settles_them_all(
    connect: ConnectFactory, world: World, device: FakeDevice, contact: Contact
) -> None:
    first, second, third = await _write(world, contact, device, "1", "2", "3")
    link = await _logged_in(connect, device)
    listed = Node("list", content=[Node("item", {"id": second})])
    await _acknowledge(link, Node("receipt", {"id": first, "to": contact.jid}, [listed]))
    assert [n.attr("id") for n in world.queued_for(_jid(device))] == [third]


async def test_another_devices_receipt_settles_nothing_of_this_one(
    connect: ConnectFactory, world: World, device: FakeDevice, contact: Contact
) -> None:
    (message_id,) = await _write(world, contact, device, "mine")
    other = await paired_device(connect, world)
    link = await _logged_in(connect, other)
    await _acknowledge(link, Node("receipt", {"id": message_id, "to": contact.jid}))
    assert [n.attr("id") for n in world.queued_for(_jid(device))] == [message_id]


async def test_a_connection_still_catching_up_gets_nothing_ahead_of_the_queue(
    world: World, device: FakeDevice
) -> None:
    catching_up = CapturingSession(_jid(device), caught_up=False)
    world.attach(catching_up)  # type: ignore[arg-type]
    taken = await hand_to_device(world, _jid(device), Node("receipt", {"id": "3EB0F1"}))
    assert taken is False and catching_up.sent == []
    assert [n.attr("id") for n in world.queued_for(_jid(device))] == ["3EB0F1"]
