"""What the server does for a linked device that sends a message to a simulated contact.

whatsmeow's send path (send.go, user.go, prekeys.go) asks the server three things, and this
module answers them: the device lists of the recipient and of its own account
(``<iq xmlns="usync">`` with ``<devices version="2"/>``), prekey bundles for the devices it has
no session with (``<iq xmlns="encrypt" type="get"><key>``), and then sends ``<message>`` with one
``<participants><to jid=device><enc/></to>`` per device, waiting for the server's
``<ack class="message">`` with the same id. The contact decrypts what was addressed to it.
"""

from __future__ import annotations

import logging
import time

from waqr.sim.node import DEFAULT_SERVER, JID, Node, iq_result
from waqr.sim.signal.cipher import Ciphertext, CiphertextKind
from waqr.sim.signal.contact import PRIMARY_DEVICE
from waqr.sim.signal.errors import SignalError
from waqr.sim.signal.prekeys import PublishedKeys, bundle_node
from waqr.sim.state import LinkedDevice, World

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


def deliver(world: World, message: Node, sender: JID) -> Node:
    """Hand each contact the ciphertext addressed to it; the ``<ack>`` for the sender."""
    participants = message.child("participants")
    targets = participants.children if participants else [message]
    for target in targets:
        jid = target.jid("jid") or message.jid("to")
        enc = target.child("enc")
        contact = world.contact_named(jid) if jid is not None else None
        if contact is None or enc is None or enc.attr("type") not in ("pkmsg", "msg"):
            continue
        kind: CiphertextKind = "pkmsg" if enc.attr("type") == "pkmsg" else "msg"
        try:
            contact.receive(sender, message.attr("id"), Ciphertext(kind, enc.data))
        except SignalError as exc:
            log.warning("contact could not decrypt message %s: %s", message.attr("id"), exc)
    to = message.jid("to") or JID(message.attr("to"), DEFAULT_SERVER)
    return Node(
        "ack",
        {"class": "message", "id": message.attr("id"), "from": to, "t": str(int(time.time()))},
    )
