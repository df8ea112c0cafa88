"""The two Signal ciphertexts WhatsApp carries in ``<enc type="msg">`` and ``<enc type="pkmsg">``.

``msg`` (SignalMessage): one version byte, the protobuf ``SignalMessage`` (ratchetKey = 1,
counter = 2, previousCounter = 3, ciphertext = 4), then an 8-byte MAC: HMAC-SHA256 under the
message's MAC key over sender identity (33 bytes) || receiver identity (33 bytes) || version byte
|| protobuf, truncated. ``pkmsg`` (PreKeySignalMessage): one version byte, then the protobuf
``PreKeySignalMessage`` (preKeyId = 1, baseKey = 2, identityKey = 3, message = 4 (a whole
serialized SignalMessage), registrationId = 5, signedPreKeyId = 6), no MAC of its own.
The version byte is (message version << 4) | current version = 0x33.
Source: libsignal ``WhisperTextProtocol.proto``, ``protocol/SignalMessage`` (facts only).

The protobuf schema is built at import time from a descriptor, so parsing is the protobuf
library's, not hand-rolled; it lives in a private pool that no other module's schema can clash with.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from waqr.sim.signal.errors import InvalidKey, InvalidMessage
from waqr.sim.signal.keys import parse_public, serialize_public
from waqr.sim.signal.session import SESSION_VERSION

VERSION_BYTE: Final = (SESSION_VERSION << 4) | SESSION_VERSION
MAC_SIZE: Final = 8
_PACKAGE: Final = "waqr.sim.signal"


def _message_classes() -> tuple[Any, Any]:
    field = descriptor_pb2.FieldDescriptorProto
    schema = descriptor_pb2.FileDescriptorProto(
        name="waqr_sim_whisper_text.proto", package=_PACKAGE, syntax="proto2"
    )
    shapes = {
        "SignalMessage": [
            ("ratchetKey", 1, field.TYPE_BYTES),
            ("counter", 2, field.TYPE_UINT32),
            ("previousCounter", 3, field.TYPE_UINT32),
            ("ciphertext", 4, field.TYPE_BYTES),
        ],
        "PreKeySignalMessage": [
            ("preKeyId", 1, field.TYPE_UINT32),
            ("baseKey", 2, field.TYPE_BYTES),
            ("identityKey", 3, field.TYPE_BYTES),
            ("message", 4, field.TYPE_BYTES),
            ("registrationId", 5, field.TYPE_UINT32),
            ("signedPreKeyId", 6, field.TYPE_UINT32),
        ],
    }
    for name, fields in shapes.items():
        message = schema.message_type.add(name=name)
        for field_name, number, kind in fields:
            message.field.add(name=field_name, number=number, type=kind, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.SignalMessage")),
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{_PACKAGE}.PreKeySignalMessage")
        ),
    )


_SignalMessageProto, _PreKeySignalMessageProto = _message_classes()


def _check_version(serialized: bytes) -> None:
    if not serialized:
        raise InvalidMessage("empty ciphertext")
    if serialized[0] >> 4 != SESSION_VERSION:
        raise InvalidMessage(f"unsupported message version {serialized[0] >> 4}")


def _mac(mac_key: bytes, sender_identity: bytes, receiver_identity: bytes, body: bytes) -> bytes:
    material = serialize_public(sender_identity) + serialize_public(receiver_identity) + body
    return hmac.new(mac_key, material, hashlib.sha256).digest()[:MAC_SIZE]


@dataclass(frozen=True)
class SignalMessage:
    """A ``msg``: one message of an established session."""

    ratchet_key: bytes
    counter: int
    previous_counter: int
    ciphertext: bytes
    serialized: bytes

    @classmethod
    def build(
        cls,
        *,
        mac_key: bytes,
        ratchet_key: bytes,
        counter: int,
        previous_counter: int,
        ciphertext: bytes,
        sender_identity: bytes,
        receiver_identity: bytes,
    ) -> SignalMessage:
        body = (
            bytes([VERSION_BYTE])
            + _SignalMessageProto(
                ratchetKey=serialize_public(ratchet_key),
                counter=counter,
                previousCounter=previous_counter,
                ciphertext=ciphertext,
            ).SerializeToString()
        )
        mac = _mac(mac_key, sender_identity, receiver_identity, body)
        return cls(ratchet_key, counter, previous_counter, ciphertext, body + mac)

    @classmethod
    def parse(cls, serialized: bytes) -> SignalMessage:
        _check_version(serialized)
        if len(serialized) <= 1 + MAC_SIZE:
            raise InvalidMessage("SignalMessage too short")
        try:
            proto = _SignalMessageProto.FromString(serialized[1:-MAC_SIZE])
            if not (proto.HasField("ratchetKey") and proto.HasField("ciphertext")):
                raise InvalidMessage("SignalMessage without ratchet key or ciphertext")
            ratchet_key = parse_public(proto.ratchetKey)
        except (DecodeError, InvalidKey) as exc:
            raise InvalidMessage(f"malformed SignalMessage: {exc}") from exc
        return cls(ratchet_key, proto.counter, proto.previousCounter, proto.ciphertext, serialized)

    def mac_matches(
        self, mac_key: bytes, *, sender_identity: bytes, receiver_identity: bytes
    ) -> bool:
        expected = _mac(mac_key, sender_identity, receiver_identity, self.serialized[:-MAC_SIZE])
        return hmac.compare_digest(expected, self.serialized[-MAC_SIZE:])


@dataclass(frozen=True)
class PreKeySignalMessage:
    """A ``pkmsg``: the first messages of a session, carrying what the peer needs to build it."""

    registration_id: int
    pre_key_id: int | None
    signed_pre_key_id: int
    base_key: bytes
    identity_key: bytes
    message: SignalMessage
    serialized: bytes

    @classmethod
    def build(
        cls,
        *,
        registration_id: int,
        pre_key_id: int | None,
        signed_pre_key_id: int,
        base_key: bytes,
        identity_key: bytes,
        message: SignalMessage,
    ) -> PreKeySignalMessage:
        proto = _PreKeySignalMessageProto(
            baseKey=serialize_public(base_key),
            identityKey=serialize_public(identity_key),
            message=message.serialized,
            registrationId=registration_id,
            signedPreKeyId=signed_pre_key_id,
        )
        if pre_key_id is not None:
            proto.preKeyId = pre_key_id
        serialized = bytes([VERSION_BYTE]) + proto.SerializeToString()
        return cls(
            registration_id,
            pre_key_id,
            signed_pre_key_id,
            base_key,
            identity_key,
            message,
            serialized,
        )

    @classmethod
    def parse(cls, serialized: bytes) -> PreKeySignalMessage:
        _check_version(serialized)
        try:
            proto = _PreKeySignalMessageProto.FromString(serialized[1:])
            required = ("signedPreKeyId", "baseKey", "identityKey", "message")
            missing = [name for name in required if not proto.HasField(name)]
            if missing:
                raise InvalidMessage(f"PreKeySignalMessage without {', '.join(missing)}")
            base_key = parse_public(proto.baseKey)
            identity_key = parse_public(proto.identityKey)
        except (DecodeError, InvalidKey) as exc:
            raise InvalidMessage(f"malformed PreKeySignalMessage: {exc}") from exc
        return cls(
            registration_id=proto.registrationId,
            # go.mau.fi/libsignal reads a preKeyId of 0 as "none", like an absent one.
            pre_key_id=proto.preKeyId or None,
            signed_pre_key_id=proto.signedPreKeyId,
            base_key=base_key,
            identity_key=identity_key,
            message=SignalMessage.parse(proto.message),
            serialized=serialized,
        )
