"""What the simulated people do: contacts write, read, go offline and come back; the linked
account's own phone writes to a contact. The control API (``phone.py``) calls these; what the
server does with the stanzas is ``relay.py``.

Errors (all ``SimError``, raised to the control API)::

    SimError
    ├── NoLinkedDevice   the account has no linked device with keys to write to
    ├── ContactOffline   the contact is offline: it can neither write nor read
    └── UnknownMessage   the contact never received a message with that id
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field

from waqr.sim.node import JID, AttrValue, Node
from waqr.sim.relay import deliver, hand_to_device, receipt_stanza
from waqr.sim.signal.cipher import Ciphertext
from waqr.sim.signal.contact import PRIMARY_DEVICE, Contact, ReceivedText
from waqr.sim.signal.errors import SignalError
from waqr.sim.state import Phone, SimError, World

log = logging.getLogger("waqr.sim.server")


class NoLinkedDevice(SimError):
    """A contact wrote to an account none of whose linked devices has uploaded keys."""


class ContactOffline(SimError):
    """The contact's phone is offline: it sends nothing until it comes back."""


class UnknownMessage(SimError):
    """The contact never received a message with that id."""


@dataclass(frozen=True)
class SentText:
    message_id: str
    delivered_to: list[JID]  # devices whose live connection got it now
    queued_for: list[JID] = field(default_factory=list)  # devices it waits for (offline queue)


def _new_message_id() -> str:
    return "3EB0" + secrets.token_hex(10).upper()


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


def _refuse_if_offline(world: World, contact: Contact) -> None:
    if contact.phone in world.offline_contacts:
        raise ContactOffline("the contact is offline: bring it online first")


async def send_from_contact(
    world: World, contact: Contact, account: str, text: str, *, quoted_id: str | None = None
) -> SentText:
    """The contact writes to every linked device of ``account`` that uploaded keys, as a phone
    does: one ciphertext per device, handed over now if the device is connected, else held in
    its offline queue for its next login. Either way the server accepts it."""
    _refuse_if_offline(world, contact)
    message_id = _new_message_id()
    delivered: list[JID] = []
    queued: list[JID] = []
    for device in [d for d in world.devices.values() if d.number == account]:
        if device.signal_keys is None:
            continue
        if not contact.has_session(device.jid):
            contact.start_session(device.jid, device.signal_keys.hand_out(device.device))
        ciphertext = contact.encrypt_text(device.jid, text, quoted_id=quoted_id)
        stanza = message_stanza(contact, message_id, ciphertext)
        taken = await hand_to_device(world, device.jid, stanza)
        (delivered if taken else queued).append(device.jid)
    if not delivered and not queued:
        raise NoLinkedDevice("no linked device of that account has uploaded its keys")
    return SentText(message_id, delivered, queued)


async def mark_read(world: World, contact: Contact, message_id: str) -> list[JID]:
    """The contact reads a message: a read receipt to the device that sent it, now or at its
    next login (a text from an account's phone is read on that phone, always online)."""
    _refuse_if_offline(world, contact)
    received = contact.received(message_id)
    if received is None:
        raise UnknownMessage("the contact received no message with that id")
    if world.phone_named(received.sender) is not None:
        return [received.sender]
    receipt = receipt_stanza(received.addressed_as, [message_id], "read")
    await hand_to_device(world, received.sender, receipt)
    return [received.sender]


def go_offline(world: World, contact: Contact) -> None:
    """The contact's phone loses its connection: the server holds what is sent to it."""
    world.offline_contacts.setdefault(contact.phone, [])


async def come_online(world: World, contact: Contact) -> list[ReceivedText]:
    """The contact's phone reconnects: it receives what the server held, in order, and
    acknowledges it with one delivery receipt per sending device and chat, as a phone does
    when it catches up (the first id, the others in ``<list>``)."""
    held = world.offline_contacts.pop(contact.phone, [])
    received = []
    for message in held:
        try:
            received.append(
                contact.receive(
                    message.sender,
                    message.message_id,
                    message.ciphertext,
                    addressed_as=message.addressed_as,
                )
            )
        except SignalError as exc:
            log.warning("contact could not decrypt message %s: %s", message.message_id, exc)
    batches: dict[tuple[JID, JID], list[str]] = {}
    for text in received:
        batches.setdefault((text.sender, text.addressed_as), []).append(text.message_id)
    for (sender, chat), message_ids in batches.items():
        await hand_to_device(world, sender, receipt_stanza(chat, message_ids))
    return received


async def send_from_phone(world: World, phone: Phone, contact: Contact, text: str) -> SentText:
    """The account's phone writes to a contact. Like any multi-device client it encrypts the
    text for the contact's phone and a ``deviceSentMessage`` copy for each of its own linked
    devices (those that uploaded keys), in one ``<message>`` the server fans out; the linked
    devices get ``<message from=phone recipient=contact>``. ``delivered_to`` names them."""
    message_id = _new_message_id()
    own = phone.signal
    to = contact.jid
    if not own.has_session(to):
        own.start_session(to, contact.published.hand_out(PRIMARY_DEVICE))
    participants = [_participant(to, own.encrypt_text(to, text))]
    copied = []
    for device in [d for d in world.devices.values() if d.number == phone.number]:
        if device.signal_keys is None:
            continue
        if not own.has_session(device.jid):
            own.start_session(device.jid, device.signal_keys.hand_out(device.device))
        participants.append(
            _participant(device.jid, own.encrypt_text(device.jid, text, destination=to))
        )
        copied.append(device.jid)
    attrs: dict[str, AttrValue] = {"id": message_id, "to": to, "type": "text"}
    stanza = Node("message", attrs, [Node("participants", content=participants)])
    await deliver(world, stanza, JID(phone.number, to.server, PRIMARY_DEVICE))
    return SentText(message_id, copied)  # the ack and receipt stay on the phone


def _participant(device: JID, ciphertext: Ciphertext) -> Node:
    enc = Node("enc", {"v": "2", "type": ciphertext.kind}, ciphertext.serialized)
    return Node("to", {"jid": device}, [enc])
