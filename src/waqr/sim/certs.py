"""The simulator's Noise certificate chain: root -> intermediate -> leaf, doc §3.5.

The client trusts exactly one root public key, compiled into its library; the simulator's root
replaces WhatsApp's there (doc §1), so its private half is kept on disk and reused, while the
intermediate and the server's static key are fresh per run. The chain travels encrypted in
ServerHello as a ``WACert.CertChain``; signatures are over the raw serialized ``Details``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from waqr.waproto import proto
from waqr.waproto.xeddsa import SigningKey

ROOT_ISSUER_SERIAL: Final = 0  # the client requires the intermediate's issuerSerial to be 0
INTERMEDIATE_SERIAL: Final = 1
LEAF_SERIAL: Final = 2
# Generous windows: the client checks notBefore <= now <= notAfter on both certificates and an
# unset notAfter is 0, i.e. always expired.
VALID_BEFORE_NOW: Final = 24 * 3600
VALID_AFTER_NOW: Final = 365 * 24 * 3600
ROOT_KEY_FILE: Final = "noise-root.key"


def load_or_create_root(state_dir: Path) -> SigningKey:
    """The root signing key kept in ``state_dir`` (created, owner-only, on first use)."""
    path = state_dir / ROOT_KEY_FILE
    if path.exists():
        return SigningKey.from_seed(bytes.fromhex(path.read_text().strip()))
    state_dir.mkdir(parents=True, exist_ok=True)
    root = SigningKey.generate()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(root.seed.hex())
    return root


def _certificate(details: bytes, signer: SigningKey) -> object:
    cert = proto.CertChain.NoiseCertificate()
    cert.details = details
    cert.signature = signer.sign(details)
    return cert


def _details(serial: int, issuer_serial: int, key: bytes, now: int) -> bytes:
    details = proto.CertChain.NoiseCertificate.Details()
    details.serial = serial
    details.issuerSerial = issuer_serial
    details.key = key
    details.notBefore = max(0, now - VALID_BEFORE_NOW)
    details.notAfter = now + VALID_AFTER_NOW
    return bytes(details.SerializeToString())


def build_cert_chain(
    root: SigningKey, intermediate: SigningKey, server_static_public: bytes, *, now: int
) -> bytes:
    """Serialized ``CertChain`` whose leaf vouches for ``server_static_public``."""
    chain = proto.CertChain()
    intermediate_details = _details(
        INTERMEDIATE_SERIAL, ROOT_ISSUER_SERIAL, intermediate.public, now
    )
    leaf_details = _details(LEAF_SERIAL, INTERMEDIATE_SERIAL, server_static_public, now)
    chain.intermediate.CopyFrom(_certificate(intermediate_details, root))
    chain.leaf.CopyFrom(_certificate(leaf_details, intermediate))
    return bytes(chain.SerializeToString())


@dataclass
class ServerIdentity:
    """Everything the handshake needs: the static key and the chain that vouches for it."""

    root: SigningKey
    static_key: X25519PrivateKey
    cert_chain: bytes

    @property
    def root_public_key(self) -> bytes:
        """The 32-byte Montgomery-form key to patch into the client as its trusted root."""
        return self.root.public

    @classmethod
    def create(cls, root: SigningKey, *, now: int | None = None) -> ServerIdentity:
        static_key = X25519PrivateKey.generate()
        chain = build_cert_chain(
            root,
            SigningKey.generate(),
            static_key.public_key().public_bytes_raw(),
            now=int(time.time()) if now is None else now,
        )
        return cls(root, static_key, chain)
