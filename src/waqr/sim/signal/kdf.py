"""The key derivations of libsignal's double ratchet (session version 3).

- X3DH output: HKDF-SHA256(salt = 32 zero bytes, info "WhisperText", 64) -> root key, chain key.
- Root step: HKDF-SHA256(ikm = DH(ratchet keys), salt = root key, info "WhisperRatchet", 64)
  -> next root key, next chain key.
- Chain step: message key seed = HMAC-SHA256(chain key, 0x01); next chain key =
  HMAC-SHA256(chain key, 0x02).
- Message keys: HKDF-SHA256(ikm = seed, zero salt, info "WhisperMessageKeys", 80) -> AES-256
  key (32), HMAC key (32), CBC IV (16).
Source: libsignal ``ratchet/ChainKey``, ``ratchet/RootKey``, ``keys/message`` (facts only).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from waqr.sim.signal.keys import KeyPair

TEXT_INFO: Final = b"WhisperText"
RATCHET_INFO: Final = b"WhisperRatchet"
MESSAGE_KEYS_INFO: Final = b"WhisperMessageKeys"
_MESSAGE_KEY_SEED: Final = b"\x01"
_CHAIN_KEY_SEED: Final = b"\x02"


def hkdf(input_key: bytes, *, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF-SHA256; a missing salt is 32 zero bytes (RFC 5869), as libsignal uses it."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(input_key)


@dataclass(frozen=True)
class MessageKeys:
    """The keys that encrypt and authenticate exactly one message."""

    cipher_key: bytes
    mac_key: bytes
    iv: bytes
    index: int


@dataclass(frozen=True)
class ChainKey:
    """One link of a sending or receiving chain; ``index`` is the message counter it yields."""

    key: bytes
    index: int

    def message_keys(self) -> MessageKeys:
        seed = hmac.new(self.key, _MESSAGE_KEY_SEED, hashlib.sha256).digest()
        derived = hkdf(seed, salt=None, info=MESSAGE_KEYS_INFO, length=80)
        return MessageKeys(derived[:32], derived[32:64], derived[64:], self.index)

    def next(self) -> ChainKey:
        return ChainKey(
            hmac.new(self.key, _CHAIN_KEY_SEED, hashlib.sha256).digest(), self.index + 1
        )


def ratchet_root(
    root_key: bytes, their_ratchet: bytes, our_ratchet: KeyPair
) -> tuple[bytes, ChainKey]:
    """One Diffie-Hellman ratchet step: the next root key and a fresh chain at index 0."""
    derived = hkdf(our_ratchet.dh(their_ratchet), salt=root_key, info=RATCHET_INFO, length=64)
    return derived[:32], ChainKey(derived[32:], 0)
