"""A simulated WhatsApp user: a phone number, and that phone's Signal device (device 0). The
linked account's own phone is one too (``state.Phone.signal``).

A contact writes and reads texts: ``encrypt_text`` gives the ciphertext for an ``<enc>`` node
to a peer device, ``decrypt`` turns one from a peer back into the text. Sessions are built the
WhatsApp way: from the peer's bundle (as the server hands it out) when the contact writes first,
or from the peer's ``pkmsg`` when the peer does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Final

from waqr.sim.node import DEFAULT_SERVER, JID
from waqr.sim.signal.cipher import Ciphertext, SessionCipher
from waqr.sim.signal.keys import PreKeyBundle
from waqr.sim.signal.message import TextMessage, decode_text, encode_text
from waqr.sim.signal.prekeys import PublishedKeys
from waqr.sim.signal.store import ProtocolStore

PRIMARY_DEVICE: Final = 0


@dataclass(frozen=True)
class ReceivedText:
    """A text that reached the contact: who sent it, under which message id, and the address
    the sender used for the contact (its phone number or its LID: receipts come from that)."""

    sender: JID
    message_id: str
    message: TextMessage
    addressed_as: JID


def _signal_address(jid: JID) -> str:
    """How the contact's store names a peer device (libsignal's ``name:device``)."""
    user = f"{jid.user}_{jid.agent}" if jid.agent else jid.user
    return f"{user}:{jid.device}"


@dataclass
class Contact:
    """Another WhatsApp user, as the simulator plays them."""

    phone: str
    store: ProtocolStore = field(repr=False)
    lid_user: str = field(default_factory=lambda: str(10**14 + secrets.randbelow(9 * 10**14)))
    published: PublishedKeys = field(init=False, repr=False)  # the server's copy of its keys
    inbox: list[ReceivedText] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.published = PublishedKeys.of(self.store)

    @classmethod
    def create(cls, phone: str, *, pre_keys: int = 20) -> Contact:
        digits = "".join(c for c in phone if c.isdigit())
        if not 8 <= len(digits) <= 15:
            raise ValueError("a contact's phone number is 8 to 15 digits (E.164)")
        return cls(digits, ProtocolStore.generate(pre_keys=pre_keys))

    @property
    def jid(self) -> JID:
        return JID(self.phone, DEFAULT_SERVER, PRIMARY_DEVICE)

    @property
    def lid(self) -> JID:
        """The contact's hidden-user id, which WhatsApp addresses messages to nowadays."""
        return JID(self.lid_user, "lid", PRIMARY_DEVICE)

    def is_user(self, jid: JID) -> bool:
        """Whether ``jid`` names this contact, by phone number or by LID."""
        return (jid.user, jid.server) in ((self.phone, DEFAULT_SERVER), (self.lid_user, "lid"))

    def published_keys(self) -> PublishedKeys:
        """What this contact's phone would upload to the server now."""
        return PublishedKeys.of(self.store)

    def has_session(self, peer: JID) -> bool:
        return self.store.has_session(_signal_address(peer))

    def start_session(self, peer: JID, bundle: PreKeyBundle) -> None:
        """Open a session with ``peer`` from the bundle the server handed out for it."""
        SessionCipher(self.store, _signal_address(peer)).start_session(bundle)

    def encrypt_text(
        self, peer: JID, text: str, *, quoted_id: str | None = None, destination: JID | None = None
    ) -> Ciphertext:
        """A text for ``peer``, padded and encrypted (raises ``NoSession`` without a session).
        ``destination`` makes it the copy of a text sent to that chat, for an own device."""
        plaintext = encode_text(
            text, quoted_id=quoted_id, destination=str(destination) if destination else None
        )
        return SessionCipher(self.store, _signal_address(peer)).encrypt(plaintext)

    def decrypt(self, peer: JID, ciphertext: Ciphertext) -> TextMessage:
        """The text in a ciphertext from ``peer`` (raises ``SignalError`` subclasses)."""
        return decode_text(SessionCipher(self.store, _signal_address(peer)).decrypt(ciphertext))

    def receive(
        self, peer: JID, message_id: str, ciphertext: Ciphertext, *, addressed_as: JID | None = None
    ) -> ReceivedText:
        """Decrypt a message the server relayed and keep it in the inbox."""
        text = self.decrypt(peer, ciphertext)
        received = ReceivedText(peer, message_id, text, addressed_as or self.jid.bare)
        self.inbox.append(received)
        return received

    def received(self, message_id: str) -> ReceivedText | None:
        return next((r for r in self.inbox if r.message_id == message_id), None)
