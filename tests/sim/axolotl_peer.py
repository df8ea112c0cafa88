"""Child process for the Signal interop tests: a device running python-axolotl.

python-axolotl is an independent Python port of libsignal (libaxolotl-android), the library
generation WhatsApp clients were built on. Its generated protobuf modules predate protobuf 4 and
load only under the pure-Python protobuf runtime, which must never be switched on in the pytest
process (neonize's modules share it), so this peer runs on its own:
``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python python axolotl_peer.py``.

One JSON object per line each way; bytes travel as hex. Requests: {"op": "bundle"},
{"op": "start", "bundle": {...}}, {"op": "encrypt", "plaintext": hex},
{"op": "decrypt", "kind": "pkmsg"|"msg", "data": hex}, {"op": "has_pre_key", "id": n}.
Replies: {"ok": true, ...} or {"ok": false, "error": exception class name, "detail": str}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from axolotl.ecc.curve import Curve
from axolotl.identitykey import IdentityKey
from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage
from axolotl.protocol.whispermessage import WhisperMessage
from axolotl.sessionbuilder import SessionBuilder
from axolotl.sessioncipher import SessionCipher
from axolotl.state.prekeybundle import PreKeyBundle
from axolotl.tests.inmemoryaxolotlstore import InMemoryAxolotlStore
from axolotl.util.keyhelper import KeyHelper

PEER = ("sim", 1)  # the simulator side's address, as this store names it
PRE_KEY_TYPE = 3  # CiphertextMessage.PREKEY_TYPE


def djb(public: bytes) -> bytes:
    return b"\x05" + public


class Peer:
    def __init__(self) -> None:
        self.store = InMemoryAxolotlStore()
        for record in KeyHelper.generatePreKeys(1, 5):
            self.store.storePreKey(record.getId(), record)
        self.signed = KeyHelper.generateSignedPreKey(self.store.getIdentityKeyPair(), 7)
        self.store.storeSignedPreKey(self.signed.getId(), self.signed)
        self.cipher = SessionCipher(self.store, self.store, self.store, self.store, *PEER)

    def bundle(self) -> dict[str, Any]:
        pre_key_id = min(self.store.preKeyStore.store)
        pre_key = self.store.loadPreKey(pre_key_id).getKeyPair().getPublicKey()
        identity = self.store.getIdentityKeyPair().getPublicKey().getPublicKey()
        return {
            "registration_id": self.store.getLocalRegistrationId(),
            "identity_key": identity.serialize()[1:].hex(),
            "signed_pre_key_id": self.signed.getId(),
            "signed_pre_key": self.signed.getKeyPair().getPublicKey().serialize()[1:].hex(),
            "signed_pre_key_signature": bytes(self.signed.getSignature()).hex(),
            "pre_key_id": pre_key_id,
            "pre_key": pre_key.serialize()[1:].hex(),
        }

    def start(self, bundle: dict[str, Any]) -> dict[str, Any]:
        pre_key = bundle.get("pre_key")
        SessionBuilder(self.store, self.store, self.store, self.store, *PEER).processPreKeyBundle(
            PreKeyBundle(
                bundle["registration_id"],
                PEER[1],
                bundle.get("pre_key_id"),
                Curve.decodePoint(djb(bytes.fromhex(pre_key)), 0) if pre_key else None,
                bundle["signed_pre_key_id"],
                Curve.decodePoint(djb(bytes.fromhex(bundle["signed_pre_key"])), 0),
                bytes.fromhex(bundle["signed_pre_key_signature"]),
                IdentityKey(djb(bytes.fromhex(bundle["identity_key"])), 0),
            )
        )
        return {}

    def encrypt(self, plaintext: str) -> dict[str, Any]:
        message = self.cipher.encrypt(bytes.fromhex(plaintext))
        kind = "pkmsg" if message.getType() == PRE_KEY_TYPE else "msg"
        return {"kind": kind, "data": bytes(message.serialize()).hex()}

    def decrypt(self, kind: str, data: str) -> dict[str, Any]:
        raw = bytes.fromhex(data)
        if kind == "pkmsg":
            plaintext = self.cipher.decryptPkmsg(PreKeyWhisperMessage(serialized=raw))
        else:
            plaintext = self.cipher.decryptMsg(WhisperMessage(serialized=raw))
        return {"plaintext": bytes(plaintext).hex()}

    def has_pre_key(self, key_id: int) -> dict[str, Any]:
        return {"present": self.store.containsPreKey(key_id)}


def main() -> None:
    peer = Peer()
    handlers = {
        "bundle": lambda request: peer.bundle(),
        "start": lambda request: peer.start(request["bundle"]),
        "encrypt": lambda request: peer.encrypt(request["plaintext"]),
        "decrypt": lambda request: peer.decrypt(request["kind"], request["data"]),
        "has_pre_key": lambda request: peer.has_pre_key(request["id"]),
    }
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"ok": True, **handlers[request["op"]](request)}
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the test, by name
            reply = {"ok": False, "error": type(exc).__name__, "detail": str(exc)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
