"""The client's check of the Noise certificate chain the server sends in ServerHello, doc §3.5.

The chain is a ``WACert.CertChain``: an intermediate signed by the root and a leaf signed by the
intermediate; the leaf's key must be the server's Noise static key. Signatures are curve25519
(``xeddsa.verify``) over the raw serialized ``Details``; serials must link (the root's is 0) and
``notBefore <= now <= notAfter`` on both. Source: whatsmeow ``handshake.go`` (facts only).
"""

from __future__ import annotations

from typing import Any, Final

from waqr.waproto import proto, xeddsa

# whatsmeow handshake.go `WACertPubKey` (doc §1); Baileys calls it WA_CERT_DETAILS.PUBLIC_KEY.
WHATSAPP_ROOT_KEY: Final = bytes.fromhex(
    "142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b"
)
ROOT_SERIAL: Final = 0


class CertChainError(Exception):
    """The chain is malformed, expired, or not vouched for by the trusted root."""


def verify_cert_chain(
    chain_bytes: bytes, *, root_key: bytes, server_static: bytes, now: int
) -> None:
    """Raise ``CertChainError`` unless ``chain_bytes`` vouches for ``server_static``."""
    chain = proto.CertChain()
    try:
        chain.ParseFromString(chain_bytes)
    except Exception as exc:  # protobuf's DecodeError is not exported in its stubs
        raise CertChainError("the certificate chain is not a CertChain") from exc
    if not chain.HasField("intermediate") or not chain.HasField("leaf"):
        raise CertChainError("the certificate chain lacks its intermediate or leaf")
    intermediate = _checked(chain.intermediate, root_key, ROOT_SERIAL, now, "intermediate")
    leaf = _checked(chain.leaf, bytes(intermediate.key), int(intermediate.serial), now, "leaf")
    if bytes(leaf.key) != server_static:
        raise CertChainError("the leaf certificate is not for the server's static key")


def _checked(cert: Any, signer: bytes, issuer_serial: int, now: int, which: str) -> Any:
    details_bytes = bytes(cert.details)
    if not xeddsa.verify(signer, details_bytes, bytes(cert.signature)):
        who = "the trusted root" if which == "intermediate" else "the intermediate"
        raise CertChainError(f"the {which} certificate is not signed by {who}")
    details = proto.CertChain.NoiseCertificate.Details()
    try:
        details.ParseFromString(details_bytes)
    except Exception as exc:  # protobuf's DecodeError, as above
        raise CertChainError(f"the {which} certificate's details do not parse") from exc
    if int(details.issuerSerial) != issuer_serial:
        raise CertChainError(f"the {which} certificate names issuer {details.issuerSerial}")
    if not int(details.notBefore) <= now <= int(details.notAfter):
        raise CertChainError(f"the {which} certificate is not valid now")
    return details
