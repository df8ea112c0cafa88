"""Server (responder) side of WhatsApp's Noise_XX_25519_AESGCM_SHA256 handshake, doc §3.

WhatsApp's flavour: the 32-byte protocol name is used as ``h`` and ``ck`` without hashing, the
prologue is the client's 4-byte intro header, handshake AEAD uses ``h`` as associated data with a
single counter shared by both directions, and the final split gives the client->server key first.
After the handshake every frame is AES-256-GCM with no associated data and per-direction counters.
Sources: whatsmeow ``socket/noisehandshake.go``, ``handshake.go`` (facts only).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from waqr.waproto import proto

PROTOCOL_NAME: Final = b"Noise_XX_25519_AESGCM_SHA256\x00\x00\x00\x00"
INTRO_HEADER: Final = b"WA\x06\x03"  # "WA", magic 6, token dictionary version 3 (doc §2)
KEY_SIZE: Final = 32


class NoiseError(Exception):
    """The peer's handshake or transport data is malformed or fails authentication."""


def hkdf_pair(salt: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    """HKDF-SHA256 (empty info) to 64 bytes, returned as two 32-byte halves (doc §3.1)."""
    prk = hmac.digest(salt, ikm, hashlib.sha256)
    first = hmac.digest(prk, b"\x01", hashlib.sha256)
    second = hmac.digest(prk, first + b"\x02", hashlib.sha256)
    return first, second


def nonce(counter: int) -> bytes:
    """12-byte IV: 8 zero bytes and a 32-bit big-endian counter (doc §3.1)."""
    return b"\x00" * 8 + counter.to_bytes(4, "big")


def dh(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as exc:
        raise NoiseError("bad X25519 public key") from exc


class SymmetricState:
    """``h``, ``ck`` and the handshake cipher; used by both roles (tests drive the initiator)."""

    def __init__(self, prologue: bytes) -> None:
        self.hash = PROTOCOL_NAME
        self.chaining_key = PROTOCOL_NAME
        self._key = AESGCM(PROTOCOL_NAME)
        self._counter = 0
        self.mix_hash(prologue)

    def mix_hash(self, data: bytes) -> None:
        self.hash = hashlib.sha256(self.hash + data).digest()

    def mix_key(self, input_key_material: bytes) -> None:
        self.chaining_key, key = hkdf_pair(self.chaining_key, input_key_material)
        self._key = AESGCM(key)
        self._counter = 0

    def encrypt(self, plaintext: bytes) -> bytes:
        ciphertext = self._key.encrypt(nonce(self._next()), plaintext, self.hash)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            plaintext = self._key.decrypt(nonce(self._next()), ciphertext, self.hash)
        except InvalidTag as exc:
            raise NoiseError("handshake message failed authentication") from exc
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytes, bytes]:
        """``(client_to_server_key, server_to_client_key)``."""
        return hkdf_pair(self.chaining_key, b"")

    def _next(self) -> int:
        self._counter += 1
        return self._counter - 1


class TransportCipher:
    """One direction of the post-handshake channel: AES-GCM, no AAD, counting frames."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self.counter = 0

    def encrypt(self, plaintext: bytes) -> bytes:
        self.counter += 1
        return self._aead.encrypt(nonce(self.counter - 1), plaintext, None)

    def decrypt(self, ciphertext: bytes) -> bytes:
        # The counter advances even on failure, as the client's own reader does (doc §3.4).
        self.counter += 1
        try:
            return self._aead.decrypt(nonce(self.counter - 1), ciphertext, None)
        except InvalidTag as exc:
            raise NoiseError("transport frame failed authentication") from exc


@dataclass
class HandshakeResult:
    """What the server knows once the client has finished the handshake."""

    client_noise_key: bytes  # the client's long-term static key, also inside its QR codes
    client_payload: bytes  # serialized ClientPayload (doc §4)
    receive: TransportCipher  # client -> server
    send: TransportCipher  # server -> client


class ServerHandshake:
    """Responder: answer ClientHello with ServerHello, then read ClientFinish (doc §3.3)."""

    def __init__(self, static_key: X25519PrivateKey, cert_chain: bytes, prologue: bytes) -> None:
        self._static = static_key
        self._cert_chain = cert_chain
        self._ephemeral = X25519PrivateKey.generate()
        self._state = SymmetricState(prologue)

    def respond(self, client_hello_frame: bytes) -> bytes:
        """The ServerHello frame (a serialized HandshakeMessage) for the client's first frame."""
        message = _parse(client_hello_frame)
        client_ephemeral = bytes(message.clientHello.ephemeral)
        if len(client_ephemeral) != KEY_SIZE:
            raise NoiseError("first frame is not a ClientHello with a 32-byte ephemeral key")
        state = self._state
        state.mix_hash(client_ephemeral)
        ephemeral_public = self._ephemeral.public_key().public_bytes_raw()
        state.mix_hash(ephemeral_public)
        state.mix_key(dh(self._ephemeral, client_ephemeral))
        static_ct = state.encrypt(self._static.public_key().public_bytes_raw())
        state.mix_key(dh(self._static, client_ephemeral))
        payload_ct = state.encrypt(self._cert_chain)
        reply = proto.HandshakeMessage()
        reply.serverHello.ephemeral = ephemeral_public
        reply.serverHello.static = static_ct
        reply.serverHello.payload = payload_ct
        return bytes(reply.SerializeToString())

    def finish(self, client_finish_frame: bytes) -> HandshakeResult:
        """Read ClientFinish (client static key + ClientPayload) and derive the transport keys."""
        message = _parse(client_finish_frame)
        if not message.HasField("clientFinish"):
            raise NoiseError("second frame is not a ClientFinish")
        state = self._state
        client_static = state.decrypt(bytes(message.clientFinish.static))
        if len(client_static) != KEY_SIZE:
            raise NoiseError("client static key is not 32 bytes")
        state.mix_key(dh(self._ephemeral, client_static))
        payload = state.decrypt(bytes(message.clientFinish.payload))
        receive_key, send_key = state.split()
        return HandshakeResult(
            client_static, payload, TransportCipher(receive_key), TransportCipher(send_key)
        )


def _parse(frame: bytes) -> Any:
    message = proto.HandshakeMessage()
    try:
        message.ParseFromString(frame)
    except Exception as exc:  # protobuf raises its own DecodeError (not exported in stubs)
        raise NoiseError("frame is not a HandshakeMessage") from exc
    return message
