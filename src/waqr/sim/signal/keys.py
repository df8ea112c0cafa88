"""Key pairs, prekeys and the prekey bundle, in the shapes libsignal serializes them.

A public key on the Signal wire is 33 bytes: the "djb" type byte 0x05 and the 32-byte X25519
u-coordinate (libsignal ``ecc.DjbType``); WhatsApp's binary nodes carry the bare 32 bytes.
An identity key is an Ed25519 key published in Montgomery form, so the same secret both signs
(XEdDSA-style, ``waqr.waproto.xeddsa``) and does X25519 in the X3DH handshake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from waqr.sim.signal.errors import InvalidKey
from waqr.waproto.xeddsa import KEY_SIZE, SigningKey, verify

DJB_TYPE: Final = 0x05


def serialize_public(public: bytes) -> bytes:
    """The 33-byte wire form of a 32-byte public key."""
    if len(public) != KEY_SIZE:
        raise InvalidKey(f"a public key is {KEY_SIZE} bytes, not {len(public)}")
    return bytes([DJB_TYPE]) + public


def parse_public(serialized: bytes) -> bytes:
    """The 32-byte public key of its 33-byte wire form."""
    if len(serialized) != KEY_SIZE + 1 or serialized[0] != DJB_TYPE:
        raise InvalidKey("a public key on the wire is 0x05 followed by 32 bytes")
    return serialized[1:]


def _exchange(private: X25519PrivateKey, their_public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(their_public))
    except ValueError as exc:  # a low-order point gives an all-zero secret
        raise InvalidKey("Diffie-Hellman with a degenerate public key") from exc


class AgreementKey(Protocol):
    """A secret that does X25519 and publishes its public half: what X3DH needs of a key."""

    @property
    def public(self) -> bytes: ...

    def dh(self, their_public: bytes) -> bytes: ...


@dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair (ratchet keys, base keys, prekeys)."""

    private: bytes
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_private(X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        key = X25519PrivateKey.from_private_bytes(private)
        return cls(private=private, public=key.public_key().public_bytes_raw())

    def dh(self, their_public: bytes) -> bytes:
        return _exchange(X25519PrivateKey.from_private_bytes(self.private), their_public)


class IdentityKeyPair:
    """A long-term identity: signs prekeys and takes part in X3DH as an X25519 key."""

    def __init__(self, signing_key: SigningKey) -> None:
        self._signing_key = signing_key
        self._x25519 = signing_key.x25519_private()
        self.public: bytes = signing_key.public

    @classmethod
    def generate(cls) -> IdentityKeyPair:
        return cls(SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKeyPair:
        return cls(SigningKey.from_seed(seed))

    @property
    def seed(self) -> bytes:
        return self._signing_key.seed

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(message)

    def dh(self, their_public: bytes) -> bytes:
        return _exchange(self._x25519, their_public)


@dataclass(frozen=True)
class PreKey:
    """A one-time prekey: used by at most one session, then deleted."""

    key_id: int
    key_pair: KeyPair


@dataclass(frozen=True)
class SignedPreKey:
    """The medium-term prekey, signed by the identity over its 33-byte wire form."""

    key_id: int
    key_pair: KeyPair
    signature: bytes

    @classmethod
    def generate(cls, identity: IdentityKeyPair, key_id: int) -> SignedPreKey:
        key_pair = KeyPair.generate()
        return cls(key_id, key_pair, identity.sign(serialize_public(key_pair.public)))


@dataclass(frozen=True)
class PreKeyBundle:
    """What the server hands out so that someone can start a session with a device."""

    registration_id: int
    device_id: int
    identity_key: bytes
    signed_pre_key_id: int
    signed_pre_key: bytes
    signed_pre_key_signature: bytes
    pre_key_id: int | None = None
    pre_key: bytes | None = None

    def verify_signature(self) -> None:
        """Raise ``InvalidKey`` unless the identity signed the signed prekey."""
        if not verify(
            self.identity_key, serialize_public(self.signed_pre_key), self.signed_pre_key_signature
        ):
            raise InvalidKey("the signed prekey's signature does not verify")
