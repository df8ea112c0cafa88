"""Curve25519 signatures the way libsignal (and so whatsmeow) checks them, doc §3.5.

WhatsApp publishes signing keys in Montgomery form (the X25519 "u" coordinate). libsignal's
verifier maps u to the Edwards y = (u-1)/(u+1), takes the Edwards sign bit from bit 7 of the
signature's last byte, clears that bit and runs plain Ed25519. So a signer may hold an ordinary
Ed25519 key, publish u = (1+y)/(1-y) and set its public key's sign bit in the signature.
Source: libsignal-go ``ecc/SignCurve25519.go``, ``ecc.VerifySignature`` (facts only).
"""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

_P: Final = 2**255 - 19
KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64


def montgomery_from_edwards(edwards_public: bytes) -> bytes:
    """The X25519 u-coordinate (32 bytes LE) of an encoded Ed25519 public key."""
    y = int.from_bytes(edwards_public, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow(1 - y, -1, _P) % _P
    return u.to_bytes(KEY_SIZE, "little")


def edwards_from_montgomery(montgomery_public: bytes, sign_bit: int) -> bytes:
    """The encoded Ed25519 public key for u, with the given x sign bit."""
    u = int.from_bytes(montgomery_public, "little") & ((1 << 255) - 1)
    y = (u - 1) * pow(u + 1, -1, _P) % _P
    return (y | (sign_bit << 255)).to_bytes(KEY_SIZE, "little")


def verify(montgomery_public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid curve25519 signature of ``message`` by that key."""
    if len(montgomery_public) != KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        edwards = edwards_from_montgomery(montgomery_public, signature[63] >> 7)
    except ValueError:  # u = -1 has no Edwards counterpart
        return False
    plain_signature = signature[:63] + bytes([signature[63] & 0x7F])
    try:
        Ed25519PublicKey.from_public_bytes(edwards).verify(plain_signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class SigningKey:
    """An Ed25519 key that signs for its Montgomery-form public key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        edwards = private.public_key().public_bytes_raw()
        self._sign_bit = edwards[31] >> 7
        self.public: bytes = montgomery_from_edwards(edwards)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte private seed, for persisting the key."""
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def x25519_private(self) -> X25519PrivateKey:
        """The same secret as an X25519 key (RFC 8032 scalar), for Diffie-Hellman with it."""
        return X25519PrivateKey.from_private_bytes(hashlib.sha512(self.seed).digest()[:32])

    def sign(self, message: bytes) -> bytes:
        signature = self._private.sign(message)
        return signature[:63] + bytes([signature[63] | (self._sign_bit << 7)])
