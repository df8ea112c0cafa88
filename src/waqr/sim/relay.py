"""Messages between linked devices and simulated contacts: what the server does for each side.

whatsmeow's send path (send.go, user.go, prekeys.go) asks the server three things, and this
module answers them: the device lists of the recipient and of its own account
(``<iq xmlns="usync">`` with ``<devices version="2"/>``), prekey bundles for the devices it has
no session with (``<iq xmlns="encrypt" type="get"><key>``), and then sends ``<message>`` with one
``<participants><to jid=device><enc/></to>`` per device, waiting for the server's
``<ack class="message">`` with the same id. The contact decrypts what was addressed to it.
The other way, ``send_from_contact`` encrypts a contact's text for each connected linked device
of the account and hands it over as ``<message from=contact><enc/></message>``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass

from waqr.sim.node import JID, AttrValue, Node, iq_result
from waqr.sim.signal.cipher import Ciphertext, CiphertextKind
from waqr.sim.signal.contact import PRIMARY_DEVICE, Contact
from waqr.sim.signal.errors import SignalError
from waqr.sim.signal.prekeys import PublishedKeys, bundle_node
from waqr.sim.state import LinkedDevice, SimError, World

log = logging.getLogger("waqr.sim.server")


def _devices_node(device_ids: list[int]) -> Node:
    devices = [Node("device", {"id": str(device_id)}) for device_id in device_ids]
    return Node("devices", content=[Node("device-list", content=devices)])


def usync_answer(world: World, request: Node, asker: LinkedDevice) -> Node:
    """Device lists and LIDs: a contact has its phone (device 0); the asker's own account lists
    its linked devices (the simulated phone has no Signal keys, so it is not listed)."""
    usync = request.child("usync")
    users = usync.child("list") if usync else None
    answered = []
    for user in users.children if users else []:
        jid = user.jid("jid")
        if jid is None:
            continue
        contact = world.contact_named(jid)
        if contact is not None:
            ids, lid = [PRIMARY_DEVICE], contact.lid
        elif jid.user in (asker.number, asker.lid_user):
            own = [d for d in world.devices.values() if d.number == asker.number]
            ids, lid = sorted(d.device for d in own), asker.lid.bare
        else:
            answered.append(Node("user", {"jid": jid.bare}, [_devices_node([])]))
            continue
        children = [_devices_node(ids), Node("lid", {"val": lid})]
        answered.append(Node("user", {"jid": jid.bare}, children))
    return iq_result(request, [Node("usync", content=[Node("list", content=answered)])])


def _keys_of(world: World, jid: JID) -> PublishedKeys | None:
    contact = world.contact_named(jid)
    if contact is not None:
        return contact.published if jid.device == PRIMARY_DEVICE else None
    device = world.device_named(jid)
    return device.signal_keys if device is not None else None


def prekey_fetch_answer(world: World, request: Node) -> Node:
    """One bundle per requested device; each one-time prekey is handed out once."""
    key = request.child("key")
    answered = []
    for user in key.children if key else []:
        jid = user.jid("jid")
        if jid is None:
            continue
        keys = _keys_of(world, jid)
        if keys is None:
            error = Node("error", {"code": "404", "text": "item-not-found"})
            answered.append(Node("user", {"jid": jid}, [error]))
        else:
            answered.append(bundle_node(jid, keys.hand_out(jid.device)))
    return iq_result(request, [Node("list", content=answered)])


def deliver(world: World, message: Node, sender: JID) -> list[Node]:
    """Hand each contact the ciphertext addressed to it. What goes back to the sender, in order:
    the server's ``<ack>``, then a delivery ``<receipt>`` if a contact got the text (a contact's
    phone is always online; the receipt comes from the chat the sender addressed)."""
    message_id = message.attr("id")
    to = message.jid("to") or JID.parse(message.attr("to"))
    participants = message.child("participants")
    targets = participants.children if participants else [message]
    received = False
    for target in targets:
        jid = target.jid("jid") or to
        enc = target.child("enc")
        contact = world.contact_named(jid)
        if contact is None or enc is None or enc.attr("type") not in ("pkmsg", "msg"):
            continue
        kind: CiphertextKind = "pkmsg" if enc.attr("type") == "pkmsg" else "msg"
        try:
            contact.receive(sender, message_id, Ciphertext(kind, enc.data), addressed_as=to)
        except SignalError as exc:
            log.warning("contact could not decrypt message %s: %s", message_id, exc)
            continue
        received = True
    now = str(int(time.time()))
    replies = [Node("ack", {"class": "message", "id": message_id, "from": to, "t": now})]
    if received:
        replies.append(Node("receipt", {"from": to, "id": message_id, "t": now}))
    return replies


class NoDeviceOnline(SimError):
    """A contact wrote to an account none of whose linked devices is connected."""


@dataclass(frozen=True)
class SentText:
    message_id: str
    delivered_to: list[JID]


def message_stanza(contact: Contact, message_id: str, ciphertext: Ciphertext) -> Node:
    """A contact's message as the server hands it to a device (whatsmeow message.go reads
    ``from``, ``id``, ``t``, ``type`` and the push name in ``notify``)."""
    enc = Node("enc", {"v": "2", "type": ciphertext.kind}, ciphertext.serialized)
    attrs: dict[str, AttrValue] = {
        "from": contact.jid,
        "id": message_id,
        "t": str(int(time.time())),
        "type": "text",
        "notify": f"Contact {contact.phone[-4:]}",
    }
    return Node("message", attrs, [enc])


async def send_from_contact(
    world: World, contact: Contact, account: str, text: str, *, quoted_id: str | None = None
) -> SentText:
    """The contact writes to every connected linked device of ``account`` that uploaded keys."""
    message_id = "3EB0" + secrets.token_hex(10).upper()
    delivered = []
    for device in [d for d in world.devices.values() if d.number == account]:
        sessions = list(world.sessions_of(device.jid))
        if device.signal_keys is None or not sessions:
            continue
        if not contact.has_session(device.jid):
            contact.start_session(device.jid, device.signal_keys.hand_out(device.device))
        ciphertext = contact.encrypt_text(device.jid, text, quoted_id=quoted_id)
        stanza = message_stanza(contact, message_id, ciphertext)
        await asyncio.gather(*(session.send_node(stanza) for session in sessions))
        delivered.append(device.jid)
    if not delivered:
        raise NoDeviceOnline("no linked device of that account is connected with its keys uploaded")
    return SentText(message_id, delivered)


class UnknownMessage(SimError):
    """The contact never received a message with that id."""


async def mark_read(world: World, contact: Contact, message_id: str) -> list[JID]:
    """The contact reads a message: a read receipt to the sender's live connections."""
    received = contact.received(message_id)
    if received is None:
        raise UnknownMessage("the contact received no message with that id")
    sessions = list(world.sessions_of(received.sender))
    if not sessions:
        raise NoDeviceOnline("the device that sent it is not connected")
    attrs: dict[str, AttrValue] = {
        "from": received.addressed_as,
        "id": message_id,
        "t": str(int(time.time())),
        "type": "read",
    }
    await asyncio.gather(*(s.send_node(Node("receipt", attrs)) for s in sessions))
    return [received.sender]
