"""The phone's side of pairing-code linking, checked against an independent client-side model.

``Companion`` below re-implements what whatsmeow's ``pair-code.go`` does on the client, with
separately written primitives (hashlib PBKDF2, RFC 5869 HKDF over hmac, CTR built from AES-ECB
blocks), so a round trip through ``waqr.sim.paircode`` cross-checks every derivation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from waqr.sim import paircode

pytestmark = pytest.mark.timeout(30)

STANDARD_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


# -- an independent model of the client (whatsmeow pair-code.go) -------------------------------


def hkdf_sha256(ikm: bytes, salt: bytes | None, info: bytes, length: int = 32) -> bytes:
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    output, block, counter = b"", b"", 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]


def ctr_by_blocks(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CTR with the whole 16-byte block as a big-endian counter, as Go's cipher.NewCTR."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - building CTR
    counter = int.from_bytes(iv, "big")
    stream = b""
    while len(stream) < len(data):
        stream += ecb.update(counter.to_bytes(16, "big"))
        counter = (counter + 1) % (1 << 128)
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


def link_key(code: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", code.encode(), salt, 131072, 32)


class Companion:
    """The client: makes the code, wraps its ephemeral key, answers primary_hello."""

    def __init__(self) -> None:
        raw = os.urandom(5)
        standard = base64.b32encode(raw).decode()
        self.code = standard.translate(str.maketrans(STANDARD_BASE32, paircode.ALPHABET))
        self.ephemeral = X25519PrivateKey.generate()
        self.identity = X25519PrivateKey.generate()
        self.adv_secret = b""

    @property
    def identity_public(self) -> bytes:
        return self.identity.public_key().public_bytes_raw()

    def companion_hello(self) -> bytes:
        """Content of ``link_code_pairing_wrapped_companion_ephemeral_pub``."""
        salt, iv = os.urandom(32), os.urandom(16)
        public = self.ephemeral.public_key().public_bytes_raw()
        return salt + iv + ctr_by_blocks(link_key(self.code, salt), iv, public)

    def on_primary_hello(self, wrapped_primary: bytes, primary_identity: bytes) -> bytes:
        """Content of ``link_code_pairing_wrapped_key_bundle``; sets ``adv_secret``."""
        salt, iv, encrypted = wrapped_primary[:32], wrapped_primary[32:48], wrapped_primary[48:80]
        primary_public = ctr_by_blocks(link_key(self.code, salt), iv, encrypted)
        shared = self.ephemeral.exchange(X25519PublicKey.from_public_bytes(primary_public))
        adv_random, bundle_salt, nonce = os.urandom(32), os.urandom(32), os.urandom(12)
        bundle_key = hkdf_sha256(
            shared, bundle_salt, b"link_code_pairing_key_bundle_encryption_key"
        )
        sealed = AESGCM(bundle_key).encrypt(
            nonce, self.identity_public + primary_identity + adv_random, None
        )
        identity_shared = self.identity.exchange(
            X25519PublicKey.from_public_bytes(primary_identity)
        )
        self.adv_secret = hkdf_sha256(shared + identity_shared + adv_random, None, b"adv_secret")
        return bundle_salt + nonce + sealed


class Phone:
    def __init__(self) -> None:
        self.identity = X25519PrivateKey.generate()

    @property
    def identity_public(self) -> bytes:
        return self.identity.public_key().public_bytes_raw()

    def finish(self, hello: paircode.PrimaryHello, bundle: bytes, companion: bytes) -> bytes:
        return paircode.companion_finish(
            hello, bundle, primary_identity=self.identity, companion_identity=companion
        )


# -- facts from the source -------------------------------------------------------------------


def test_the_code_alphabet_and_sizes_are_whatsmeows() -> None:
    assert paircode.ALPHABET == "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
    assert len(set(paircode.ALPHABET)) == 32
    assert not set("0IOU") & set(paircode.ALPHABET)
    assert paircode.CODE_LENGTH == 8  # 5 random bytes in base32
    assert paircode.PBKDF2_ITERATIONS == 131072  # 2<<16
    assert paircode.WRAPPED_KEY_SIZE == 80
    assert paircode.WRAPPED_BUNDLE_SIZE == 32 + 12 + 96 + 16


def test_codes_are_read_the_way_people_type_them() -> None:
    code = Companion().code
    assert len(code) == 8
    shown = paircode.format_code(code)
    assert shown == f"{code[:4]}-{code[4:]}"
    assert paircode.normalize_code(f" {shown.lower()} ") == code


@pytest.mark.parametrize("typed", ["ABCD-EFG", "ABCD-EFGHJ", "ABCD-EFG0", "OBCD-EFGH", ""])
def test_impossible_codes_are_rejected(typed: str) -> None:
    with pytest.raises(paircode.PairCodeError):
        paircode.normalize_code(typed)


def test_the_code_key_is_pbkdf2_sha256() -> None:
    salt = os.urandom(32)
    assert paircode.code_key("ABCD-EFGH", salt) == link_key("ABCDEFGH", salt)


def test_wrapping_counts_over_the_whole_16_byte_block() -> None:
    key_to_wrap = os.urandom(32)
    salt, iv = os.urandom(32), b"\xff" * 16  # the second block's counter wraps to zero
    wrapped = paircode.wrap_ephemeral("ABCDEFGH", key_to_wrap, salt=salt, iv=iv)
    assert wrapped[:48] == salt + iv
    assert wrapped[48:] == ctr_by_blocks(link_key("ABCDEFGH", salt), iv, key_to_wrap)


# -- the exchange, end to end --------------------------------------------------------------------


def test_phone_and_client_derive_the_same_adv_secret() -> None:
    client, phone = Companion(), Phone()
    wrapped_companion = client.companion_hello()
    assert len(wrapped_companion) == paircode.WRAPPED_KEY_SIZE

    hello = paircode.primary_hello(paircode.format_code(client.code), wrapped_companion)
    assert len(hello.wrapped_primary_ephemeral) == paircode.WRAPPED_KEY_SIZE
    bundle = client.on_primary_hello(hello.wrapped_primary_ephemeral, phone.identity_public)
    assert len(bundle) == paircode.WRAPPED_BUNDLE_SIZE

    # The secret pair-success must be HMAC'd with (doc §6.3) is the one the client now holds.
    assert phone.finish(hello, bundle, client.identity_public) == client.adv_secret


def test_the_low_level_steps_match_the_client_model() -> None:
    client, phone = Companion(), Phone()
    wrapped_companion = client.companion_hello()
    companion_public = paircode.unwrap_ephemeral(client.code, wrapped_companion)
    assert companion_public == client.ephemeral.public_key().public_bytes_raw()

    primary_ephemeral = X25519PrivateKey.generate()
    shared = primary_ephemeral.exchange(X25519PublicKey.from_public_bytes(companion_public))
    wrapped_primary = paircode.wrap_ephemeral(
        client.code, primary_ephemeral.public_key().public_bytes_raw()
    )
    bundle = paircode.open_key_bundle(
        shared, client.on_primary_hello(wrapped_primary, phone.identity_public)
    )
    assert bundle[:32] == client.identity_public
    assert bundle[32:64] == phone.identity_public
    identity_shared = phone.identity.exchange(X25519PublicKey.from_public_bytes(bundle[:32]))
    assert paircode.derive_adv_secret(shared, identity_shared, bundle[64:]) == client.adv_secret


def test_a_mistyped_code_fails_when_the_key_bundle_is_opened() -> None:
    client, phone = Companion(), Phone()
    wrong = "ZZZZZZZZ" if client.code != "ZZZZZZZZ" else "YYYYYYYY"
    hello = paircode.primary_hello(wrong, client.companion_hello())
    bundle = client.on_primary_hello(hello.wrapped_primary_ephemeral, phone.identity_public)
    with pytest.raises(paircode.PairCodeError, match="wrong pairing code"):
        phone.finish(hello, bundle, client.identity_public)


def test_a_bundle_for_another_phone_or_device_is_rejected() -> None:
    client, phone, other = Companion(), Phone(), Phone()
    hello = paircode.primary_hello(client.code, client.companion_hello())
    bundle = client.on_primary_hello(hello.wrapped_primary_ephemeral, other.identity_public)
    with pytest.raises(paircode.PairCodeError, match="another primary"):
        phone.finish(hello, bundle, client.identity_public)
    bundle = client.on_primary_hello(hello.wrapped_primary_ephemeral, phone.identity_public)
    with pytest.raises(paircode.PairCodeError, match="another companion"):
        phone.finish(hello, bundle, Phone().identity_public)


def test_malformed_inputs_are_pair_code_errors() -> None:
    with pytest.raises(paircode.PairCodeError):
        paircode.unwrap_ephemeral("ABCDEFGH", bytes(79))
    with pytest.raises(paircode.PairCodeError):
        paircode.open_key_bundle(bytes(32), bytes(155))
    with pytest.raises(paircode.PairCodeError):
        paircode.wrap_ephemeral("ABCDEFGH", bytes(31))
    assert issubclass(paircode.PairCodeError, ValueError)  # callers may catch ValueError
