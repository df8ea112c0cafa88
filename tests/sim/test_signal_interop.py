"""Our Signal implementation against python-axolotl, an independent port of libsignal.

The peer runs in its own process (tests/sim/axolotl_peer.py says why). Every exchange goes both
ways: a session either side starts, ratchet steps in both directions, messages out of order,
replays refused, forged bytes refused without harming the session.

Not checked here: a pkmsg of ours without a one-time prekey. python-axolotl reads the absent
preKeyId as 0 and looks for prekey 0 (libsignal-java and go.mau.fi/libsignal read it as absent),
so test_signal_sessions.py checks that case against the wire format instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from waqr.sim.node import JID
from waqr.sim.signal import (
    Ciphertext,
    DuplicateMessage,
    InvalidMessage,
    PreKeyBundle,
    ProtocolStore,
    SessionCipher,
)
from waqr.sim.signal.contact import Contact
from waqr.sim.signal.padding import pad, unpad
from waqr.waproto.proto import Message

PEER_SCRIPT = Path(__file__).with_name("axolotl_peer.py")
PEER_ADDRESS = "peer:1"


class AxolotlPeer:
    """A python-axolotl device behind a JSON-lines pipe."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, f"the axolotl peer exited (code {self._process.poll()})"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ok(self, op: str, **fields: Any) -> dict[str, Any]:
        reply = self.call(op, **fields)
        assert reply["ok"], reply
        return reply

    def bundle(self) -> PreKeyBundle:
        b = self.ok("bundle")
        return PreKeyBundle(
            registration_id=b["registration_id"],
            device_id=1,
            identity_key=bytes.fromhex(b["identity_key"]),
            signed_pre_key_id=b["signed_pre_key_id"],
            signed_pre_key=bytes.fromhex(b["signed_pre_key"]),
            signed_pre_key_signature=bytes.fromhex(b["signed_pre_key_signature"]),
            pre_key_id=b["pre_key_id"],
            pre_key=bytes.fromhex(b["pre_key"]),
        )

    def start(self, bundle: PreKeyBundle) -> None:
        fields: dict[str, Any] = {
            "registration_id": bundle.registration_id,
            "identity_key": bundle.identity_key.hex(),
            "signed_pre_key_id": bundle.signed_pre_key_id,
            "signed_pre_key": bundle.signed_pre_key.hex(),
            "signed_pre_key_signature": bundle.signed_pre_key_signature.hex(),
        }
        if bundle.pre_key is not None:
            fields |= {"pre_key_id": bundle.pre_key_id, "pre_key": bundle.pre_key.hex()}
        self.ok("start", bundle=fields)

    def encrypt(self, plaintext: bytes) -> Ciphertext:
        reply = self.ok("encrypt", plaintext=plaintext.hex())
        return Ciphertext(reply["kind"], bytes.fromhex(reply["data"]))

    def decrypt(self, ciphertext: Ciphertext) -> bytes:
        reply = self.ok("decrypt", kind=ciphertext.kind, data=ciphertext.serialized.hex())
        return bytes.fromhex(reply["plaintext"])

    def decrypt_error(self, ciphertext: Ciphertext) -> str:
        reply = self.call("decrypt", kind=ciphertext.kind, data=ciphertext.serialized.hex())
        assert not reply["ok"], f"the peer decrypted what it should refuse: {reply}"
        return str(reply["error"])


@pytest.fixture
def peer() -> Iterator[AxolotlPeer]:
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    with subprocess.Popen(
        [sys.executable, str(PEER_SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            yield AxolotlPeer(process)
        finally:
            process.kill()


@pytest.fixture
def ours() -> ProtocolStore:
    return ProtocolStore.generate(pre_keys=3)


def _session_started_by_us(ours: ProtocolStore, peer: AxolotlPeer) -> SessionCipher:
    cipher = SessionCipher(ours, PEER_ADDRESS)
    cipher.start_session(peer.bundle())
    first = cipher.encrypt(b"hello from the simulator")
    assert first.kind == "pkmsg"
    assert peer.decrypt(first) == b"hello from the simulator"
    answer = peer.encrypt(b"answer")
    assert answer.kind == "msg"
    assert cipher.decrypt(answer) == b"answer"
    return cipher


def _session_started_by_peer(ours: ProtocolStore, peer: AxolotlPeer) -> SessionCipher:
    peer.start(ours.bundle())
    first = peer.encrypt(b"hello from libsignal")
    assert first.kind == "pkmsg"
    cipher = SessionCipher(ours, PEER_ADDRESS)
    assert cipher.decrypt(first) == b"hello from libsignal"
    answer = cipher.encrypt(b"answer")
    assert answer.kind == "msg"
    assert peer.decrypt(answer) == b"answer"
    return cipher


def _converse(cipher: SessionCipher, peer: AxolotlPeer, rounds: int) -> None:
    """Turns of two messages each way: every turn is a Diffie-Hellman ratchet step."""
    for turn in range(rounds):
        for n in range(2):
            reply = peer.encrypt(f"peer turn {turn} #{n}".encode())
            assert reply.kind == "msg"
            assert cipher.decrypt(reply) == f"peer turn {turn} #{n}".encode()
        for n in range(2):
            sent = cipher.encrypt(f"our turn {turn} #{n}".encode())
            assert sent.kind == "msg"
            assert peer.decrypt(sent) == f"our turn {turn} #{n}".encode()


def test_our_prekey_message_opens_a_session_in_libsignal(
    ours: ProtocolStore, peer: AxolotlPeer
) -> None:
    bundle = peer.bundle()
    cipher = _session_started_by_us(ours, peer)
    assert peer.ok("has_pre_key", id=bundle.pre_key_id)["present"] is False
    _converse(cipher, peer, rounds=3)


def test_libsignal_prekey_message_opens_a_session_here(
    ours: ProtocolStore, peer: AxolotlPeer
) -> None:
    used_pre_key_id = ours.bundle().pre_key_id
    cipher = _session_started_by_peer(ours, peer)
    assert used_pre_key_id not in ours.pre_keys
    _converse(cipher, peer, rounds=3)


def test_their_session_without_a_one_time_prekey(peer: AxolotlPeer) -> None:
    # The server hands out bundles without a one-time prekey once a device ran out of them.
    exhausted = ProtocolStore.generate(pre_keys=0)
    peer.start(exhausted.bundle())
    cipher = SessionCipher(exhausted, PEER_ADDRESS)
    assert cipher.decrypt(peer.encrypt(b"no one-time prekey")) == b"no one-time prekey"
    assert peer.decrypt(cipher.encrypt(b"answer")) == b"answer"
    _converse(cipher, peer, rounds=1)


def test_we_repeat_prekey_messages_until_answered(ours: ProtocolStore, peer: AxolotlPeer) -> None:
    cipher = SessionCipher(ours, PEER_ADDRESS)
    cipher.start_session(peer.bundle())
    unanswered = [cipher.encrypt(f"unanswered {n}".encode()) for n in range(3)]
    assert [m.kind for m in unanswered] == ["pkmsg"] * 3
    for n in (0, 2, 1):  # the later ones find the session the first one built
        assert peer.decrypt(unanswered[n]) == f"unanswered {n}".encode()
    assert cipher.decrypt(peer.encrypt(b"answer")) == b"answer"
    assert cipher.encrypt(b"acknowledged").kind == "msg"


def test_their_repeated_prekey_messages_build_one_session(
    ours: ProtocolStore, peer: AxolotlPeer
) -> None:
    peer.start(ours.bundle())
    unanswered = [peer.encrypt(f"unanswered {n}".encode()) for n in range(3)]
    assert [m.kind for m in unanswered] == ["pkmsg"] * 3
    cipher = SessionCipher(ours, PEER_ADDRESS)
    for n in (1, 0, 2):
        assert cipher.decrypt(unanswered[n]) == f"unanswered {n}".encode()
    assert ours.sessions[PEER_ADDRESS].previous == []  # one session, not three
    with pytest.raises(DuplicateMessage):
        cipher.decrypt(unanswered[0])
    assert peer.decrypt(cipher.encrypt(b"answer")) == b"answer"
    assert peer.encrypt(b"acknowledged").kind == "msg"


def test_out_of_order_messages_decrypt_with_skipped_keys(
    ours: ProtocolStore, peer: AxolotlPeer
) -> None:
    cipher = _session_started_by_peer(ours, peer)
    theirs = [peer.encrypt(f"theirs {n}".encode()) for n in range(5)]
    for n in (4, 0, 2, 1, 3):
        assert cipher.decrypt(theirs[n]) == f"theirs {n}".encode()

    mine = [cipher.encrypt(f"mine {n}".encode()) for n in range(4)]
    for n in (3, 1, 0, 2):
        assert peer.decrypt(mine[n]) == f"mine {n}".encode()


def test_skipped_keys_survive_a_ratchet_step(ours: ProtocolStore, peer: AxolotlPeer) -> None:
    cipher = _session_started_by_us(ours, peer)
    old_chain = [peer.encrypt(f"old {n}".encode()) for n in range(3)]
    assert cipher.decrypt(old_chain[2]) == b"old 2"
    assert peer.decrypt(cipher.encrypt(b"turn")) == b"turn"
    new_chain = peer.encrypt(b"new 0")
    assert cipher.decrypt(new_chain) == b"new 0"
    assert cipher.decrypt(old_chain[0]) == b"old 0"
    assert cipher.decrypt(old_chain[1]) == b"old 1"

    mine_old = [cipher.encrypt(f"mine old {n}".encode()) for n in range(2)]
    assert cipher.decrypt(peer.encrypt(b"peer turn")) == b"peer turn"
    mine_new = cipher.encrypt(b"mine new")
    assert peer.decrypt(mine_new) == b"mine new"
    assert peer.decrypt(mine_old[1]) == b"mine old 1"
    assert peer.decrypt(mine_old[0]) == b"mine old 0"


def test_a_replayed_message_is_refused_and_the_session_goes_on(
    ours: ProtocolStore, peer: AxolotlPeer
) -> None:
    cipher = _session_started_by_peer(ours, peer)
    message = peer.encrypt(b"once")
    assert cipher.decrypt(message) == b"once"
    with pytest.raises(DuplicateMessage):
        cipher.decrypt(message)
    skipped, delivered = peer.encrypt(b"skipped"), peer.encrypt(b"delivered")
    assert cipher.decrypt(delivered) == b"delivered"
    assert cipher.decrypt(skipped) == b"skipped"
    with pytest.raises(DuplicateMessage):
        cipher.decrypt(skipped)  # a used skipped key is gone too

    ours_once = cipher.encrypt(b"ours once")
    assert peer.decrypt(ours_once) == b"ours once"
    assert peer.decrypt_error(ours_once) == "DuplicateMessageException"
    assert cipher.decrypt(peer.encrypt(b"still fine")) == b"still fine"


def test_forged_bytes_are_refused_without_harming_the_session(
    ours: ProtocolStore, peer: AxolotlPeer
) -> None:
    cipher = _session_started_by_peer(ours, peer)
    genuine = peer.encrypt(b"genuine")
    body = bytearray(genuine.serialized)
    body[-12] ^= 0x01  # inside the ciphertext, before the MAC
    with pytest.raises(InvalidMessage, match="bad MAC"):
        cipher.decrypt(Ciphertext("msg", bytes(body)))
    assert cipher.decrypt(genuine) == b"genuine"

    ours_genuine = cipher.encrypt(b"ours genuine")
    forged = bytearray(ours_genuine.serialized)
    forged[-1] ^= 0x80  # the MAC itself
    assert peer.decrypt_error(Ciphertext("msg", bytes(forged))) == "InvalidMessageException"
    assert peer.decrypt(ours_genuine) == b"ours genuine"


def test_a_contacts_texts_cross_to_libsignal_as_padded_wae2e_messages(peer: AxolotlPeer) -> None:
    contact = Contact.create("+49 151 2345 6789")
    engine = JID("15550001111", "s.whatsapp.net", device=3)
    contact.start_session(engine, peer.bundle())
    received = peer.decrypt(contact.encrypt_text(engine, "Grüße aus dem Simulator"))
    assert Message.FromString(unpad(received)).conversation == "Grüße aus dem Simulator"

    reply = Message()
    reply.extendedTextMessage.text = "danke"
    reply.extendedTextMessage.contextInfo.stanzaID = "3EB0FACE"
    text = contact.decrypt(engine, peer.encrypt(pad(reply.SerializeToString())))
    assert (text.text, text.quoted_id) == ("danke", "3EB0FACE")
