"""What the simulated phone computes when it links a device: QR parsing and the ADV identity.

Doc §6.2 (QR string), §6.3 (ADVSignedDeviceIdentityHMAC, account signature, device signature).
Pure functions: no I/O, so the HTTP phone, the server and the tests share them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Final

from waqr.waproto import proto, xeddsa
from waqr.waproto.xeddsa import SigningKey

QR_PREFIX: Final = "https://wa.me/settings/linked_devices#"
# Signature prefixes (whatsmeow pair.go): account signature 06 00, device signature 06 01.
ACCOUNT_SIGNATURE_PREFIX: Final = b"\x06\x00"
DEVICE_SIGNATURE_PREFIX: Final = b"\x06\x01"
SIGNED_PREKEY_PREFIX: Final = b"\x05"  # the key-type byte libsignal signs along with the key


class QRFormatError(ValueError):
    """The text is not a WhatsApp device-linking QR payload."""


@dataclass(frozen=True)
class QRPayload:
    """The fields of ``ref,noise,identity,adv[,type]`` (doc §6.2)."""

    # Kept out of repr: QR contents are secrets (the ADV secret authenticates the pairing).
    ref: str = field(repr=False)
    noise_key: bytes = field(repr=False)
    identity_key: bytes = field(repr=False)
    adv_secret: bytes = field(repr=False)
    client_type: str = ""


def parse_qr(text: str) -> QRPayload:
    """Read a QR string as the client renders it (with or without the wa.me prefix)."""
    body = text.strip()
    if "#" in body:
        body = body.split("#", 1)[1]
    parts = body.split(",")
    if len(parts) not in (4, 5) or not parts[0]:
        raise QRFormatError("expected ref,noise,identity,adv[,type]")
    try:
        noise, identity, adv = (base64.b64decode(p, validate=True) for p in parts[1:4])
    except binascii.Error as exc:
        raise QRFormatError("a key field is not base64") from exc
    if not len(noise) == len(identity) == len(adv) == 32:
        raise QRFormatError("keys and ADV secret must be 32 bytes")
    return QRPayload(parts[0], noise, identity, adv, parts[4] if len(parts) == 5 else "")


def verify_signed_prekey(identity_key: bytes, signed_prekey: bytes, signature: bytes) -> bool:
    """The registration payload's ``eSkeySig`` over ``05 || eSkeyVal`` (doc §4)."""
    return xeddsa.verify(identity_key, SIGNED_PREKEY_PREFIX + signed_prekey, signature)


@dataclass(frozen=True)
class DeviceIdentity:
    """The ``device-identity`` blob for pair-success, with what is needed to check the reply."""

    hmac_container: bytes  # serialized ADVSignedDeviceIdentityHMAC, sent to the client
    details: bytes  # serialized ADVDeviceIdentity (signed by both sides)
    key_index: int


def build_device_identity(
    account_key: SigningKey,
    adv_secret: bytes,
    device_identity_key: bytes,
    *,
    raw_id: int,
    key_index: int,
    timestamp: int,
) -> DeviceIdentity:
    """Sign the new device into the account and authenticate it with the QR's ADV secret."""
    details = proto.ADVDeviceIdentity()
    details.rawID = raw_id
    details.timestamp = timestamp
    details.keyIndex = key_index
    details.accountType = proto.ADV_E2EE
    details.deviceType = proto.ADV_E2EE
    details_bytes = bytes(details.SerializeToString())
    signed = proto.ADVSignedDeviceIdentity()
    signed.details = details_bytes
    signed.accountSignatureKey = account_key.public
    signed.accountSignature = account_key.sign(
        ACCOUNT_SIGNATURE_PREFIX + details_bytes + device_identity_key
    )
    signed_bytes = bytes(signed.SerializeToString())
    container = proto.ADVSignedDeviceIdentityHMAC()
    container.details = signed_bytes
    container.HMAC = hmac.digest(adv_secret, signed_bytes, hashlib.sha256)
    container.accountType = proto.ADV_E2EE
    return DeviceIdentity(bytes(container.SerializeToString()), details_bytes, key_index)


class DeviceSignatureError(ValueError):
    """The client's pair-device-sign reply does not carry a valid device signature."""


def check_device_signature(
    reply_identity: bytes, expected: DeviceIdentity, device_identity_key: bytes, account_key: bytes
) -> None:
    """Check the client's ``pair-device-sign`` blob: same details, valid device signature."""
    signed = proto.ADVSignedDeviceIdentity()
    try:
        signed.ParseFromString(reply_identity)
    except Exception as exc:  # protobuf's DecodeError
        raise DeviceSignatureError("device-identity is not an ADVSignedDeviceIdentity") from exc
    if bytes(signed.details) != expected.details:
        raise DeviceSignatureError("device-identity details differ from the ones sent")
    message = DEVICE_SIGNATURE_PREFIX + expected.details + device_identity_key + account_key
    if not xeddsa.verify(device_identity_key, message, bytes(signed.deviceSignature)):
        raise DeviceSignatureError("device signature does not verify")
