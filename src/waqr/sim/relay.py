"""Messages between devices: what the server does with them, which it cannot read.

whatsmeow's send path (send.go, user.go, prekeys.go) asks the server three things, and this
module answers them: the device lists of the recipient and of its own account
(``<iq xmlns="usync">`` with ``<devices version="2"/>``), prekey bundles for the devices it has
no session with (``<iq xmlns="encrypt" type="get"><key>``), and then sends ``<message>`` with one
``<participants><to jid=device><enc/></to>`` per device, waiting for the server's
``<ack class="message">`` with the same id. ``deliver`` hands each ``<enc>`` to the device it
names: a contact's phone (held while the contact is offline), the sender's own phone, or another
linked device of the sender's account (as ``<message from=sender recipient=chat>``, the copy
whatsmeow reports with IsFromMe). What the simulated people do is in ``users.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from waqr.sim.node import JID, AttrValue, Node, iq_result
from waqr.sim.signal.cipher import Ciphertext, CiphertextKind
from waqr.sim.signal.contact import PRIMARY_DEVICE, Contact
from waqr.sim.signal.errors import SignalError
from waqr.sim.signal.prekeys import PublishedKeys, bundle_node
from waqr.sim.state import HeldMessage, LinkedDevice, World

log = logging.getLogger("waqr.sim.server")


def _devices_node(device_ids: list[int]) -> Node:
    devices = [Node("device", {"id": str(device_id)}) for device_id in device_ids]
    return Node("devices", content=[Node("device-list", content=devices)])


def usync_answer(world: World, request: Node, asker: LinkedDevice) -> Node:
    """Device lists and LIDs: a contact has its phone (device 0); the asker's own account lists
    its phone (device 0, as on WhatsApp: the primary is always there) and its linked devices."""
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
            ids, lid = [PRIMARY_DEVICE, *sorted(d.device for d in own)], asker.lid.bare
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
    phone = world.phone_named(jid)
    if phone is not None:
        return phone.signal.published
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


def _ciphertext(enc: Node | None) -> Ciphertext | None:
    if enc is None or enc.attr("type") not in ("pkmsg", "msg"):
        return None
    kind: CiphertextKind = "pkmsg" if enc.attr("type") == "pkmsg" else "msg"
    return Ciphertext(kind, enc.data)


def receipt_stanza(chat: JID, message_ids: list[str], kind: str = "") -> Node:
    """A receipt for messages of one chat: the first id in ``id``, the rest as
    ``<list><item id/></list>`` (whatsmeow receipt.go reads both into MessageIDs)."""
    attrs: dict[str, AttrValue] = {"from": chat, "id": message_ids[0], "t": str(int(time.time()))}
    if kind:
        attrs["type"] = kind
    items = [Node("item", {"id": message_id}) for message_id in message_ids[1:]]
    return Node("receipt", attrs, [Node("list", content=items)] if items else None)


async def hand_to_device(world: World, device: JID, node: Node) -> bool:
    """Give a linked device a stanza through its offline queue: it is queued first, then sent
    to the device's live connections that have caught up (``server.Session``), and stays
    queued for the next login until the device acknowledges it (``World.device_queues``).
    True if a live connection took it now. Phones and unknown devices get nothing this way."""
    if world.device_named(device) is None:
        return False
    world.queue_for_device(device, node)
    sessions = [session for session in world.sessions_of(device) if session.caught_up]
    results = await asyncio.gather(
        *(session.send_node(node) for session in sessions), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, ConnectionError):
            raise result
    taken = any(not isinstance(result, BaseException) for result in results)
    if taken and node.tag != "message":
        world.unqueue(device, node)  # a receipt is not acknowledged: sent is gone
    return taken


def _contact_receives(world: World, contact: Contact, held: HeldMessage) -> bool:
    """True if the contact got the text now; an offline contact's message waits on the server."""
    waiting = world.offline_contacts.get(contact.phone)
    if waiting is not None:
        waiting.append(held)
        return False
    try:
        contact.receive(
            held.sender, held.message_id, held.ciphertext, addressed_as=held.addressed_as
        )
    except SignalError as exc:
        log.warning("contact could not decrypt message %s: %s", held.message_id, exc)
        return False
    return True


def own_copy_stanza(sender: JID, chat: JID, message_id: str, enc: Node) -> Node:
    """What another device of the sender's account gets: whatsmeow (message.go
    parseMessageSource) reads ``from`` of the own user as IsFromMe and ``recipient`` as the
    chat."""
    attrs: dict[str, AttrValue] = {
        "from": sender,
        "recipient": chat,
        "id": message_id,
        "t": str(int(time.time())),
        "type": "text",
    }
    return Node("message", attrs, [enc])


async def deliver(world: World, message: Node, sender: JID) -> list[Node]:
    """Hand every ``<enc>`` to the device it names. What goes back to the sender, in order:
    the server's ``<ack>``, then a delivery ``<receipt>`` if a contact got the text now (the
    receipt comes from the chat the sender addressed; an offline contact sends it later)."""
    message_id = message.attr("id")
    to = message.jid("to") or JID.parse(message.attr("to"))
    participants = message.child("participants")
    targets = participants.children if participants else [message]
    received = False
    for target in targets:
        jid = target.jid("jid") or to
        enc = target.child("enc")
        ciphertext = _ciphertext(enc)
        if enc is None or ciphertext is None:
            continue
        contact = world.contact_named(jid)
        phone = world.phone_named(jid)
        device = world.device_named(jid)
        if contact is not None:
            held = HeldMessage(sender, message_id, ciphertext, to)
            received = _contact_receives(world, contact, held) or received
        elif phone is not None:
            try:  # the own phone keeps the copy (a deviceSentMessage) of what a device sent
                phone.signal.receive(sender, message_id, ciphertext, addressed_as=to)
            except SignalError as exc:
                log.warning("the phone could not decrypt message %s: %s", message_id, exc)
        elif device is not None and device.jid != sender:
            await hand_to_device(world, device.jid, own_copy_stanza(sender, to, message_id, enc))
    now = str(int(time.time()))
    replies = [Node("ack", {"class": "message", "id": message_id, "from": to, "t": now})]
    if received:
        replies.append(receipt_stanza(to, [message_id]))
    return replies
