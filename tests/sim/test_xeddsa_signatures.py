"""Curve25519 signatures as libsignal verifies them (doc §3.5)."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from waqr.waproto.xeddsa import SigningKey, edwards_from_montgomery, montgomery_from_edwards, verify


def test_published_key_is_the_x25519_key_of_the_same_secret() -> None:
    # RFC 8032/7748: an Ed25519 seed's clamped SHA-512 half is the X25519 scalar for the same
    # point, so the Montgomery form we publish must equal X25519's own public key.
    key = SigningKey.generate()
    scalar = hashlib.sha512(key.seed).digest()[:32]
    assert X25519PrivateKey.from_private_bytes(scalar).public_key().public_bytes_raw() == key.public
    assert key.x25519_private().public_key().public_bytes_raw() == key.public


def test_signature_verifies_with_the_montgomery_key() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"details")
    assert len(signature) == 64 and len(key.public) == 32
    assert verify(key.public, b"details", signature)


def test_tampered_message_signature_or_key_is_rejected() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    signature = key.sign(b"details")
    assert not verify(key.public, b"detailz", signature)
    assert not verify(other.public, b"details", signature)
    flipped = signature[:10] + bytes([signature[10] ^ 1]) + signature[11:]
    assert not verify(key.public, b"details", flipped)
    sign_flipped = signature[:63] + bytes([signature[63] ^ 0x80])
    assert not verify(key.public, b"details", sign_flipped)
    assert not verify(key.public[:31], b"details", signature)


def test_edwards_montgomery_maps_are_inverse() -> None:
    key = SigningKey.generate()
    for sign in (0, 1):
        edwards = edwards_from_montgomery(key.public, sign)
        assert montgomery_from_edwards(edwards) == key.public
        assert edwards[31] >> 7 == sign


def test_seed_round_trip_keeps_the_key() -> None:
    key = SigningKey.generate()
    assert SigningKey.from_seed(key.seed).public == key.public
