"""The phone's side of linking with a pairing code ("link with phone number"): pure functions.

Facts from whatsmeow ``pair-code.go`` (tulir/whatsmeow @ 33cfac51; the strings
``link_code_pairing_key_bundle_encryption_key``, ``adv_secret`` and the code alphabet are also in
the bundled neonize 0.5.2 library). Everything is in the ``md`` namespace; ``TAG`` below is both
the iq child and the notification type.

1. Companion hello (client -> server), ``<iq xmlns="md" type="set" to=s.whatsapp.net>`` with
   ``<link_code_companion_reg jid=<phone>@s.whatsapp.net (a JID) stage="companion_hello"
   should_show_push_notification="true|false">`` holding:
   ``link_code_pairing_wrapped_companion_ephemeral_pub`` (80 bytes: see ``wrap_ephemeral``),
   ``companion_server_auth_key_pub`` (the 32-byte noise key of the handshake),
   ``companion_platform_id`` (a string, the client-type letter, e.g. ``6``),
   ``companion_platform_display`` (a string such as ``Chrome (Linux)``),
   ``link_code_pairing_nonce`` (one zero byte). The client generated the code itself: 5 random
   bytes in base32 with ``ALPHABET`` = 8 characters, shown to the person as ``ABCD-EFGH``.
2. Server answer: ``<iq type="result" id=<same>>`` with ``<link_code_companion_reg>`` holding
   ``<link_code_pairing_ref>`` BYTES (opaque; the client keeps it and compares it later).
   ``PairPhone`` fails unless that child exists with byte content.
3. The person types the code on the phone. The phone unwraps the companion's ephemeral key with
   it (``unwrap_ephemeral``), makes its own ephemeral X25519 key, and the server delivers
   ``<notification type="link_code_companion_reg" from=s.whatsapp.net id=.. t=..>`` with
   ``<link_code_companion_reg stage="primary_hello">`` holding ``link_code_pairing_ref`` (the
   same bytes), ``link_code_pairing_wrapped_primary_ephemeral_pub`` (80 bytes, the phone's
   ephemeral public key wrapped with the same code; the client requires >= 80 bytes) and
   ``primary_identity_pub`` (32 bytes: the phone's identity key, the same account key that
   signs the ADV identity in pair-success). The client acks the notification.
4. Companion finish (client -> server), ``<iq xmlns="md" type="set">`` with
   ``<link_code_companion_reg jid=<phone JID> stage="companion_finish">`` holding
   ``link_code_pairing_wrapped_key_bundle`` (156 bytes, ``open_key_bundle``),
   ``companion_identity_public`` (its 32-byte identity key, = ``eIdent``) and
   ``link_code_pairing_ref``. Answer ``type="result"`` (the client only logs an error reply).
5. Both sides now hold the ADV secret (``derive_adv_secret``); the client has replaced its
   QR-time secret with it, so the phone's ``pair-success`` (doc §6.3) must be HMAC'd with it.

Crypto: the code key is PBKDF2-HMAC-SHA256(code, salt, 131072 rounds, 32 bytes) and wraps a
32-byte X25519 public key with AES-256-CTR (16-byte initial counter block). The key bundle
is AES-256-GCM (12-byte nonce, no AAD) under HKDF-SHA256(ikm = ephemeral DH, salt = bundle salt,
info ``BUNDLE_INFO``). The ADV secret is HKDF-SHA256(ikm = ephemeral DH || identity DH ||
32 random bytes from the bundle, no salt, info ``adv_secret``), identity DH being between the
companion's identity key and ``primary_identity_pub``. Each PBKDF2 takes tens of milliseconds:
call these from a thread (``asyncio.to_thread``) in a server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

TAG: Final = "link_code_companion_reg"
# whatsmeow `linkingBase32`: Crockford-like, without 0, I, O and U.
ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
CODE_LENGTH: Final = 8  # base32 of 5 random bytes, no padding
PBKDF2_ITERATIONS: Final = 2 << 16  # = 131072, as written in pair-code.go
KEY_SIZE: Final = 32
SALT_SIZE: Final = 32
CTR_IV_SIZE: Final = 16
WRAPPED_KEY_SIZE: Final = SALT_SIZE + CTR_IV_SIZE + KEY_SIZE  # 80
BUNDLE_SALT_SIZE: Final = 32
BUNDLE_NONCE_SIZE: Final = 12
BUNDLE_PLAINTEXT_SIZE: Final = 3 * KEY_SIZE  # companion identity, primary identity, ADV random
GCM_TAG_SIZE: Final = 16
WRAPPED_BUNDLE_SIZE: Final = (
    BUNDLE_SALT_SIZE + BUNDLE_NONCE_SIZE + BUNDLE_PLAINTEXT_SIZE + GCM_TAG_SIZE
)  # 156
BUNDLE_INFO: Final = b"link_code_pairing_key_bundle_encryption_key"
ADV_SECRET_INFO: Final = b"adv_secret"


class PairCodeError(ValueError):
    """A code, wrapped key or key bundle that does not check out (usually: a mistyped code)."""


def normalize_code(typed: str) -> str:
    """The 8 code characters as the client used them: dash and spaces removed, upper case."""
    code = "".join(typed.split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(char not in ALPHABET for char in code):
        raise PairCodeError(f"a pairing code is {CODE_LENGTH} characters of {ALPHABET}")
    return code


def format_code(code: str) -> str:
    """``ABCDEFGH`` -> ``ABCD-EFGH``, the way the client shows it."""
    code = normalize_code(code)
    return f"{code[:4]}-{code[4:]}"


def code_key(code: str, salt: bytes) -> bytes:
    """The AES key a code and a 32-byte salt give (PBKDF2-HMAC-SHA256)."""
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, iterations=PBKDF2_ITERATIONS
    )
    return kdf.derive(normalize_code(code).encode("ascii"))


def wrap_ephemeral(
    code: str, public_key: bytes, *, salt: bytes | None = None, iv: bytes | None = None
) -> bytes:
    """salt (32) || counter block (16) || AES-CTR(code key, public key) (32) = 80 bytes."""
    if len(public_key) != KEY_SIZE:
        raise PairCodeError(f"an X25519 public key is {KEY_SIZE} bytes")
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    iv = os.urandom(CTR_IV_SIZE) if iv is None else iv
    if len(salt) != SALT_SIZE or len(iv) != CTR_IV_SIZE:
        raise PairCodeError("wrong salt or counter block size")
    return salt + iv + _ctr(code_key(code, salt), iv, public_key)


def unwrap_ephemeral(code: str, wrapped: bytes) -> bytes:
    """The 32-byte public key inside ``wrapped``; a wrong code yields a different key, silently.

    Like the client, only the first 80 bytes are read and longer input is tolerated.
    """
    if len(wrapped) < WRAPPED_KEY_SIZE:
        raise PairCodeError(f"a wrapped key is {WRAPPED_KEY_SIZE} bytes, got {len(wrapped)}")
    salt = wrapped[:SALT_SIZE]
    iv = wrapped[SALT_SIZE : SALT_SIZE + CTR_IV_SIZE]
    encrypted = wrapped[SALT_SIZE + CTR_IV_SIZE : WRAPPED_KEY_SIZE]
    return _ctr(code_key(code, salt), iv, encrypted)


def bundle_key(ephemeral_shared: bytes, salt: bytes) -> bytes:
    """The key-bundle AES key: HKDF-SHA256 of the ephemeral DH secret with the bundle salt."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=BUNDLE_INFO).derive(
        ephemeral_shared
    )


def open_key_bundle(ephemeral_shared: bytes, wrapped_bundle: bytes) -> bytes:
    """The 96-byte bundle: companion identity || primary identity || ADV random (32 each)."""
    if len(wrapped_bundle) != WRAPPED_BUNDLE_SIZE:
        raise PairCodeError(
            f"a wrapped key bundle is {WRAPPED_BUNDLE_SIZE} bytes, got {len(wrapped_bundle)}"
        )
    salt = wrapped_bundle[:BUNDLE_SALT_SIZE]
    nonce = wrapped_bundle[BUNDLE_SALT_SIZE : BUNDLE_SALT_SIZE + BUNDLE_NONCE_SIZE]
    sealed = wrapped_bundle[BUNDLE_SALT_SIZE + BUNDLE_NONCE_SIZE :]
    try:
        return AESGCM(bundle_key(ephemeral_shared, salt)).decrypt(nonce, sealed, None)
    except InvalidTag as exc:
        # Either side unwrapping with another code gives another DH secret, so this is
        # where a mistyped code shows.
        raise PairCodeError("the key bundle does not open: wrong pairing code") from exc


def derive_adv_secret(ephemeral_shared: bytes, identity_shared: bytes, adv_random: bytes) -> bytes:
    """The 32-byte ADV secret the pair-success HMAC is keyed with."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=ADV_SECRET_INFO).derive(
        ephemeral_shared + identity_shared + adv_random
    )


@dataclass(frozen=True)
class PrimaryHello:
    """The phone's step 3: what goes into the notification, and the secret it keeps."""

    wrapped_primary_ephemeral: bytes  # ``link_code_pairing_wrapped_primary_ephemeral_pub``
    ephemeral_shared: bytes = field(repr=False)


def primary_hello(
    code: str,
    wrapped_companion_ephemeral: bytes,
    *,
    primary_ephemeral: X25519PrivateKey | None = None,
) -> PrimaryHello:
    """Unwrap the companion's ephemeral key with the typed code and wrap the phone's own."""
    companion_public = unwrap_ephemeral(code, wrapped_companion_ephemeral)
    ephemeral = primary_ephemeral or X25519PrivateKey.generate()
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(companion_public))
    except ValueError as exc:  # a low-order point: only a garbled key gets here
        raise PairCodeError("the companion's ephemeral key is unusable") from exc
    wrapped = wrap_ephemeral(code, ephemeral.public_key().public_bytes_raw())
    return PrimaryHello(wrapped, shared)


def companion_finish(
    hello: PrimaryHello,
    wrapped_key_bundle: bytes,
    *,
    primary_identity: X25519PrivateKey,
    companion_identity: bytes,
) -> bytes:
    """Open the client's key bundle, check whom it names, and return the ADV secret."""
    bundle = open_key_bundle(hello.ephemeral_shared, wrapped_key_bundle)
    named_companion, named_primary, adv_random = (
        bundle[:KEY_SIZE],
        bundle[KEY_SIZE : 2 * KEY_SIZE],
        bundle[2 * KEY_SIZE :],
    )
    if named_companion != companion_identity:
        raise PairCodeError("the key bundle names another companion identity")
    if named_primary != primary_identity.public_key().public_bytes_raw():
        raise PairCodeError("the key bundle names another primary identity")
    try:
        identity_shared = primary_identity.exchange(
            X25519PublicKey.from_public_bytes(companion_identity)
        )
    except ValueError as exc:
        raise PairCodeError("the companion's identity key is unusable") from exc
    return derive_adv_secret(hello.ephemeral_shared, identity_shared, adv_random)


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    # Go's cipher.NewCTR and cryptography's CTR both count over the whole 16-byte block,
    # big-endian, so the 32-byte key spans counter blocks iv and iv + 1 in both.
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()
