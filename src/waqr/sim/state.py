"""The simulator's world, in memory: phones, linked devices, live connections and the fault plan.

Errors raised to the control API (all ``SimError``)::

    SimError
    ├── UnknownQRError       no live connection is showing that QR (expired, scanned, made up)
    ├── UnknownDeviceError   no linked device has that JID
    └── PairingFailedError   the client refused pair-success or sent a bad device signature
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Literal, Protocol

from waqr.sim.blackhole import BlackHole, BlackHoleSettings
from waqr.sim.chaos import Chaos, Sleep
from waqr.sim.node import DEFAULT_SERVER, JID, Node
from waqr.sim.pairing import QRPayload
from waqr.sim.signal.cipher import Ciphertext
from waqr.sim.signal.contact import PRIMARY_DEVICE, Contact
from waqr.sim.signal.prekeys import PublishedKeys
from waqr.sim.signal.store import ProtocolStore
from waqr.waproto.xeddsa import SigningKey

SessionKind = Literal["handshake", "registration", "login"]
Conflict = Literal["replaced", "device_removed"]
DEFAULT_REF_COUNT = 6  # what the real server sends (doc §6.1); 60 s + 5 x 20 s of QR codes
# What the server does once a device is linked (wa-server-behaviour.md, "Pairing and the 515"):
#   close              send <stream:error code=515/>, drop the socket at once (WhatsApp does)
#   linger             send the 515, close 10 s later: the client nearly always closes first
#   close_without_515  drop the socket at once, no 515: the client that lost the race
AfterPair = Literal["close", "linger", "close_without_515"]
# Observed (whatsmeow PR #430): WhatsApp ends a socket that never paired after about 210 s.
DEFAULT_UNPAIRED_CLOSE_AFTER = 210.0


class SimError(Exception):
    """A control request the simulated world cannot carry out."""


class UnknownQRError(SimError):
    pass


class UnknownDeviceError(SimError):
    pass


class PairingFailedError(SimError):
    pass


class Pairable(Protocol):
    """A registration connection that is showing QR codes (implemented in ``registration.py``)."""

    async def pair(self, phone: Phone, qr: QRPayload) -> LinkedDevice: ...


class CodePairable(Protocol):
    """A registration connection waiting for its pairing code to be typed on the phone."""

    async def pair_with_code(self, phone: Phone, code: str) -> LinkedDevice: ...


class LiveSession(Protocol):
    """What the world may do with a client connection (implemented in ``server.py``)."""

    conn_id: int
    kind: SessionKind
    device_jid: JID | None
    black_hole: BlackHole
    # True once the device's offline queue was handed over on this connection: only then does
    # a new stanza go to it at once (before, it would overtake older queued ones).
    caught_up: bool

    async def stream_error(self, code: int | None, conflict: str | None = None) -> None: ...

    async def drop(self) -> None: ...

    async def send_node(self, node: Node) -> None: ...

    def replace(self) -> None: ...


@dataclass
class Phone:
    """A simulated primary phone: owns the account key that signs linked devices, and is the
    account's device 0, a Signal device like a contact's phone (``signal``)."""

    number: str  # digits only, e.g. "15550001111"
    lid_user: str
    account_key: SigningKey = field(repr=False)
    next_device: int = 1
    next_key_index: int = 1
    signal: Contact = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.signal = Contact(self.number, ProtocolStore.generate(), lid_user=self.lid_user)

    @property
    def jid(self) -> JID:
        return JID(self.number, DEFAULT_SERVER)

    def is_device(self, jid: JID) -> bool:
        """Whether ``jid`` names this phone's own device (device 0), by number or LID."""
        return jid.device == PRIMARY_DEVICE and self.signal.is_user(jid)


@dataclass(frozen=True)
class HeldMessage:
    """A message the server keeps for a contact that is offline, as the sender addressed it."""

    sender: JID
    message_id: str
    ciphertext: Ciphertext
    addressed_as: JID


@dataclass
class LinkedDevice:
    """A companion the phone linked (doc §6.5): the login lookup key is (number, device)."""

    number: str
    device: int
    lid_user: str
    identity_key: bytes = field(repr=False)
    noise_key: bytes = field(repr=False)
    registration_id: int = 0
    platform: str = ""
    linked_at: float = field(default_factory=time.time)
    prekey_count: int = 0  # one-time prekeys the device has uploaded (doc §7)
    app_version: str = ""  # the WhatsApp Web version its last ClientPayload announced
    signal_keys: PublishedKeys | None = field(default=None, repr=False)  # its last upload

    @property
    def jid(self) -> JID:
        return JID(self.number, DEFAULT_SERVER, device=self.device)

    @property
    def lid(self) -> JID:
        return JID(self.lid_user, "lid", device=self.device)


@dataclass
class Refusal:
    """A ``<failure reason=...>`` to send instead of ``<success>`` (doc §10)."""

    reason: int
    code: int | None = None  # temporary-ban code (402)
    expire: int | None = None  # temporary-ban seconds (402)
    message: str | None = None
    on: Literal["login", "registration", "any"] = "login"

    def node(self) -> Node:
        attrs = {"reason": str(self.reason)}
        for key, value in (("code", self.code), ("expire", self.expire)):
            if value is not None:
                attrs[key] = str(value)
        if self.message:
            attrs["message"] = self.message
        return Node("failure", dict(attrs))


@dataclass
class StreamFault:
    """A ``<stream:error>`` to send right after a login completes (doc §9)."""

    code: int | None = None
    conflict: Conflict | None = None


@dataclass
class FaultPlan:
    """Protocol-level misbehaviour: queued faults are used once, settings last until cleared."""

    refusals: list[Refusal] = field(default_factory=list)
    stream_faults: list[StreamFault] = field(default_factory=list)
    ref_count: int = DEFAULT_REF_COUNT
    ignore_pings: bool = False
    after_pair: AfterPair = "close"
    unpaired_close_after: float | None = DEFAULT_UNPAIRED_CLOSE_AFTER  # seconds; None = never
    chaos: Chaos | None = None
    black_hole: BlackHoleSettings | None = None  # for every login from now on (blackhole.py)

    def clear(self) -> None:
        """Back to WhatsApp's own behaviour: nothing queued, every setting at its default."""
        fresh = FaultPlan()
        for plan_field in fields(self):
            setattr(self, plan_field.name, getattr(fresh, plan_field.name))

    def take_refusal(self, kind: SessionKind) -> Refusal | None:
        for index, refusal in enumerate(self.refusals):
            if refusal.on in (kind, "any"):
                return self.refusals.pop(index)
        return None

    def take_stream_fault(self) -> StreamFault | None:
        return self.stream_faults.pop(0) if self.stream_faults else None


def _random_digits(count: int) -> str:
    return str(secrets.randbelow(9) + 1) + "".join(
        str(secrets.randbelow(10)) for _ in range(count - 1)
    )


class World:
    """Everything the simulator knows; shared by all connections and the control API."""

    def __init__(self, *, default_phone: str = "15550001111", sleep: Sleep = asyncio.sleep) -> None:
        self.default_phone = default_phone
        self.sleep = sleep  # the clock of timed faults (black holes); tests pass a fake one
        self.phones: dict[str, Phone] = {}
        self.devices: dict[tuple[str, int], LinkedDevice] = {}
        self.contacts: dict[str, Contact] = {}  # other WhatsApp users, by phone number
        # Contacts that are offline, by phone number, each with what the server holds for it
        # (in arrival order) until it comes back.
        self.offline_contacts: dict[str, list[HeldMessage]] = {}
        # Each linked device's offline queue: every stanza the server has for it, in arrival
        # order. A <message> stays until the device acknowledges it (a delivery receipt or an
        # ack naming its id), so one handed to a connection that dropped first is handed over
        # again at the next login (WhatsApp is at-least-once; clients de-duplicate by id).
        # Anything else (receipts) goes once a live connection has taken it.
        self.device_queues: dict[JID, list[Node]] = {}
        # Every <receipt> and <ack> a linked device sent, as (tag, message id, type): how a
        # test sees when an engine let go of a message it was handed.
        self.from_devices: list[tuple[str, str, str]] = []
        self.sessions: dict[int, LiveSession] = {}
        self.faults = FaultPlan()
        self._offered_refs: dict[str, Pairable] = {}
        self._code_waiters: dict[str, CodePairable] = {}  # by the phone number the bot typed
        self._next_conn_id = 1

    # -- phones and devices

    def phone(self, number: str | None = None) -> Phone:
        """The phone with this number (digits only are kept), created on first use."""
        digits = "".join(c for c in (number or self.default_phone) if c.isdigit())
        if not digits:
            raise SimError("a phone number needs digits")
        if digits not in self.phones:
            self.phones[digits] = Phone(digits, _random_digits(15), SigningKey.generate())
        return self.phones[digits]

    def contact(self, number: str) -> Contact:
        """The simulated contact with this number, created on first use."""
        digits = "".join(c for c in number if c.isdigit())
        if digits not in self.contacts:
            self.contacts[digits] = Contact.create(digits)
        return self.contacts[digits]

    def phone_named(self, jid: JID) -> Phone | None:
        """The phone (device 0 of its account) a JID names, by phone number or LID."""
        return next((p for p in self.phones.values() if p.is_device(jid)), None)

    def contact_named(self, jid: JID) -> Contact | None:
        """The contact a JID names, by phone number or LID."""
        return next((c for c in self.contacts.values() if c.is_user(jid)), None)

    def device_named(self, jid: JID) -> LinkedDevice | None:
        """The linked device a JID names, by phone number or LID (with its device number)."""
        if jid.server == "lid":
            return next(
                (
                    d
                    for d in self.devices.values()
                    if (d.lid_user, d.device) == (jid.user, jid.device)
                ),
                None,
            )
        return self.device(jid.user, jid.device)

    def link(self, device: LinkedDevice) -> None:
        self.devices[(device.number, device.device)] = device

    def device(self, number: str, device: int) -> LinkedDevice | None:
        return self.devices.get((number, device))

    def unlink(self, jid: JID) -> LinkedDevice:
        removed = self.devices.pop((jid.user, jid.device), None)
        if removed is None:
            raise UnknownDeviceError("no linked device has that JID")
        self.device_queues.pop(removed.jid, None)
        return removed

    # -- each linked device's offline queue

    def queue_for_device(self, device: JID, node: Node) -> None:
        self.device_queues.setdefault(device, []).append(node)

    def queued_for(self, device: JID) -> list[Node]:
        """What the server still has for the device, oldest first (a copy of the queue)."""
        return list(self.device_queues.get(device, []))

    def unqueue(self, device: JID, node: Node) -> None:
        """Forget one stanza the device has taken (by identity: ids repeat across tags)."""
        queue = self.device_queues.get(device, [])
        self.device_queues[device] = [queued for queued in queue if queued is not node]
        if not self.device_queues[device]:
            del self.device_queues[device]

    def settle(self, device: JID, message_ids: list[str]) -> int:
        """The device acknowledged these messages: they leave its queue. How many left."""
        queue = self.device_queues.get(device, [])
        kept = [n for n in queue if not (n.tag == "message" and n.attr("id") in message_ids)]
        if kept:
            self.device_queues[device] = kept
        else:
            self.device_queues.pop(device, None)
        return len(queue) - len(kept)

    # -- live connections

    def new_conn_id(self) -> int:
        self._next_conn_id += 1
        return self._next_conn_id - 1

    def attach(self, session: LiveSession) -> None:
        self.sessions[session.conn_id] = session

    def detach(self, session: LiveSession) -> None:
        self.sessions.pop(session.conn_id, None)

    def sessions_of(self, jid: JID) -> Iterator[LiveSession]:
        """Live logged-in connections of one device."""
        for session in list(self.sessions.values()):
            if session.device_jid is not None and session.device_jid == jid:
                yield session

    def logged_in(self) -> list[LiveSession]:
        """Connections that completed a login (a refused login is not one)."""
        return [s for s in self.sessions.values() if s.kind == "login" and s.device_jid is not None]

    # -- QR refs on offer

    def offer_refs(self, refs: list[str], target: Pairable) -> None:
        for ref in refs:
            self._offered_refs[ref] = target

    def withdraw_refs(self, target: Pairable) -> None:
        for ref in [r for r, t in self._offered_refs.items() if t is target]:
            del self._offered_refs[ref]

    async def scan(self, qr: QRPayload, phone_number: str | None = None) -> LinkedDevice:
        """The phone scans a QR: link the device that is showing it."""
        target = self._offered_refs.get(qr.ref)
        if target is None:
            raise UnknownQRError("no connected client is showing that QR code")
        return await target.pair(self.phone(phone_number), qr)

    # -- pairing codes (doc §6, whatsmeow pair-code.go)

    def await_link_code(self, phone_number: str, target: CodePairable) -> None:
        self._code_waiters[phone_number] = target

    def withdraw_link_code(self, target: CodePairable) -> None:
        for number in [n for n, t in self._code_waiters.items() if t is target]:
            del self._code_waiters[number]

    async def enter_link_code(self, code: str, phone_number: str | None = None) -> LinkedDevice:
        """The phone's user types the code the bot shows: link the bot that asked for it."""
        phone = self.phone(phone_number)
        target = self._code_waiters.get(phone.number)
        if target is None:
            raise UnknownQRError("no connected client asked for a pairing code for that phone")
        return await target.pair_with_code(phone, code)
