"""One device's Signal keys and sessions (libsignal's identity, prekey and session stores in one).

Kept in memory: the simulator's contacts live as long as the simulator does. Peers are named by
their Signal address (WhatsApp uses ``user[_agent]:device``); the store does not parse it. Every
peer identity is trusted, as whatsmeow's identity store does, so none is recorded.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Final

from waqr.sim.signal.errors import InvalidKeyId
from waqr.sim.signal.keys import IdentityKeyPair, KeyPair, PreKey, PreKeyBundle, SignedPreKey
from waqr.sim.signal.session import SessionRecord

# libsignal's KeyHelper draws registration ids from 1..16380 (14 bits, zero excluded).
MAX_REGISTRATION_ID: Final = 16380
# WhatsApp's prekey ids travel as 3 bytes (whatsmeow prekeys.go), so they stay below 2**24.
MAX_PRE_KEY_ID: Final = 2**24 - 1


def new_registration_id() -> int:
    return 1 + secrets.randbelow(MAX_REGISTRATION_ID)


@dataclass
class ProtocolStore:
    """Everything one Signal device holds: its identity, its prekeys, its sessions."""

    identity: IdentityKeyPair
    registration_id: int
    signed_pre_key: SignedPreKey
    pre_keys: dict[int, PreKey] = field(default_factory=dict)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    _next_pre_key_id: int = 1

    @classmethod
    def generate(cls, *, pre_keys: int = 10, signed_pre_key_id: int = 1) -> ProtocolStore:
        identity = IdentityKeyPair.generate()
        store = cls(
            identity=identity,
            registration_id=new_registration_id(),
            signed_pre_key=SignedPreKey.generate(identity, signed_pre_key_id),
        )
        store.add_pre_keys(pre_keys)
        return store

    def add_pre_keys(self, count: int) -> list[PreKey]:
        """Mint ``count`` fresh one-time prekeys with ids never used before."""
        minted = []
        for _ in range(count):
            if self._next_pre_key_id > MAX_PRE_KEY_ID:
                self._next_pre_key_id = 1
            key = PreKey(self._next_pre_key_id, KeyPair.generate())
            self.pre_keys[key.key_id] = key
            minted.append(key)
            self._next_pre_key_id += 1
        return minted

    def load_pre_key(self, key_id: int) -> PreKey:
        """The one-time prekey ``key_id`` (held until ``remove_pre_key``)."""
        try:
            return self.pre_keys[key_id]
        except KeyError:
            raise InvalidKeyId(f"no one-time prekey with id {key_id}") from None

    def remove_pre_key(self, key_id: int) -> None:
        self.pre_keys.pop(key_id, None)

    def load_signed_pre_key(self, key_id: int) -> SignedPreKey:
        if key_id != self.signed_pre_key.key_id:
            raise InvalidKeyId(f"no signed prekey with id {key_id}")
        return self.signed_pre_key

    def bundle(self, *, device_id: int = 0) -> PreKeyBundle:
        """A bundle for someone who wants a session, with the lowest unused one-time prekey."""
        pre_key = self.pre_keys[min(self.pre_keys)] if self.pre_keys else None
        return PreKeyBundle(
            registration_id=self.registration_id,
            device_id=device_id,
            identity_key=self.identity.public,
            signed_pre_key_id=self.signed_pre_key.key_id,
            signed_pre_key=self.signed_pre_key.key_pair.public,
            signed_pre_key_signature=self.signed_pre_key.signature,
            pre_key_id=pre_key.key_id if pre_key else None,
            pre_key=pre_key.key_pair.public if pre_key else None,
        )

    def session(self, address: str) -> SessionRecord:
        """The sessions with ``address`` (an empty record when there are none)."""
        return self.sessions.get(address, SessionRecord())

    def has_session(self, address: str) -> bool:
        record = self.sessions.get(address)
        return record is not None and record.current is not None
