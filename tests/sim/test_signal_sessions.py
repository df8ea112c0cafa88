"""Sessions between two of our own Signal devices: the wire format, and every refusal.

Interop with an independent libsignal port is in test_signal_interop.py; these tests cover what
that port cannot show (its own bugs aside): the exact bytes, and that refused input changes nothing.
"""

from __future__ import annotations

import dataclasses

import pytest

from waqr.sim.signal import (
    Ciphertext,
    InvalidKey,
    InvalidKeyId,
    InvalidMessage,
    NoSession,
    ProtocolStore,
    SessionCipher,
    SignedPreKey,
)
from waqr.sim.signal.session import MAX_RECEIVER_CHAINS
from waqr.sim.signal.wire import MAC_SIZE, PreKeySignalMessage, SignalMessage


def _pair(
    *, bob_pre_keys: int = 2
) -> tuple[ProtocolStore, ProtocolStore, SessionCipher, SessionCipher]:
    alice, bob = ProtocolStore.generate(), ProtocolStore.generate(pre_keys=bob_pre_keys)
    to_bob, to_alice = SessionCipher(alice, "bob:0"), SessionCipher(bob, "alice:0")
    to_bob.start_session(bob.bundle())
    return alice, bob, to_bob, to_alice


def _established() -> tuple[ProtocolStore, ProtocolStore, SessionCipher, SessionCipher]:
    alice, bob, to_bob, to_alice = _pair()
    assert to_alice.decrypt(to_bob.encrypt(b"hi")) == b"hi"
    assert to_bob.decrypt(to_alice.encrypt(b"hello")) == b"hello"
    return alice, bob, to_bob, to_alice


def test_a_prekey_message_carries_what_the_bundle_named() -> None:
    alice, bob, to_bob, _ = _pair()
    bundle = bob.bundle()
    sent = to_bob.encrypt(b"first")
    assert sent.kind == "pkmsg"
    assert sent.serialized[0] == 0x33  # (version 3 << 4) | current version 3
    parsed = PreKeySignalMessage.parse(sent.serialized)
    assert parsed.pre_key_id == bundle.pre_key_id
    assert parsed.signed_pre_key_id == bundle.signed_pre_key_id
    assert parsed.identity_key == alice.identity.public
    assert parsed.registration_id == alice.registration_id
    inner = parsed.message.serialized
    assert inner[0] == 0x33
    assert parsed.message.counter == 0 and parsed.message.previous_counter == 0
    rebuilt = SignalMessage.parse(inner)
    assert len(inner) == 1 + len(inner[1:-MAC_SIZE]) + MAC_SIZE
    assert rebuilt == parsed.message


def test_a_prekey_message_without_a_one_time_prekey_omits_its_id() -> None:
    alice, bob, to_bob, to_alice = _pair(bob_pre_keys=0)
    sent = to_bob.encrypt(b"no one-time prekey")
    # go.mau.fi/libsignal reads an absent or zero preKeyId as "none"; field 1 would come first.
    assert sent.serialized[1] != 0x08
    assert PreKeySignalMessage.parse(sent.serialized).pre_key_id is None
    assert to_alice.decrypt(sent) == b"no one-time prekey"


def test_the_one_time_prekey_is_used_once() -> None:
    _, bob, to_bob, to_alice = _pair()
    used = bob.bundle().pre_key_id
    to_alice.decrypt(to_bob.encrypt(b"first"))
    assert used not in bob.pre_keys
    assert bob.bundle().pre_key_id != used


@pytest.mark.parametrize("version_byte", [0x22, 0x43], ids=["legacy-v2", "future-v4"])
def test_other_protocol_versions_are_refused(version_byte: int) -> None:
    _, _, to_bob, to_alice = _established()
    sent = to_bob.encrypt(b"x")
    with pytest.raises(InvalidMessage, match="version"):
        to_alice.decrypt(Ciphertext("msg", bytes([version_byte]) + sent.serialized[1:]))
    assert to_alice.decrypt(sent) == b"x"


@pytest.mark.parametrize("kind", ["msg", "pkmsg"])
@pytest.mark.parametrize(
    "data", [b"", b"\x33", b"\x33" + b"\xff" * 20], ids=["empty", "bare", "junk"]
)
def test_malformed_bytes_are_refused(kind: str, data: bytes) -> None:
    _, _, _, to_alice = _established()
    with pytest.raises(InvalidMessage):
        to_alice.decrypt(Ciphertext(kind, data))  # type: ignore[arg-type]


def test_a_prekey_message_naming_unknown_prekeys_changes_nothing() -> None:
    _, bob, to_bob, to_alice = _pair()
    sent = to_bob.encrypt(b"first")
    one_time = dict(bob.pre_keys)
    bob.pre_keys.clear()
    with pytest.raises(InvalidKeyId):
        to_alice.decrypt(sent)
    assert bob.sessions == {}

    bob.pre_keys.update(one_time)
    original_signed = bob.signed_pre_key
    bob.signed_pre_key = SignedPreKey.generate(bob.identity, key_id=original_signed.key_id + 1)
    with pytest.raises(InvalidKeyId):
        to_alice.decrypt(sent)
    assert bob.sessions == {} and bob.pre_keys == one_time

    bob.signed_pre_key = original_signed
    assert to_alice.decrypt(sent) == b"first"


def test_a_bundle_with_a_forged_signature_is_refused() -> None:
    alice, bob = ProtocolStore.generate(), ProtocolStore.generate()
    bundle = bob.bundle()
    forged = bytearray(bundle.signed_pre_key_signature)
    forged[0] ^= 0x01
    cipher = SessionCipher(alice, "bob:0")
    with pytest.raises(InvalidKey):
        cipher.start_session(dataclasses.replace(bundle, signed_pre_key_signature=bytes(forged)))
    someone_else = ProtocolStore.generate()
    with pytest.raises(InvalidKey):
        cipher.start_session(dataclasses.replace(bundle, identity_key=someone_else.identity.public))
    assert alice.sessions == {}
    with pytest.raises(NoSession):
        cipher.encrypt(b"nobody to send to")


def test_a_message_more_than_2000_ahead_is_refused() -> None:
    alice, _, to_bob, to_alice = _established()
    in_time = to_bob.encrypt(b"in time")
    state = alice.sessions["bob:0"].current
    assert state is not None
    for _ in range(2001):
        state.sender_chain = state.sender_chain.next()
    with pytest.raises(InvalidMessage, match="2000"):
        to_alice.decrypt(to_bob.encrypt(b"too far"))
    assert to_alice.decrypt(in_time) == b"in time"


def test_a_new_session_from_the_same_peer_archives_the_old_one() -> None:
    _, bob, to_bob, to_alice = _established()
    on_old_session = to_bob.encrypt(b"sent on the old session")
    to_bob.start_session(bob.bundle())  # alice starts over, e.g. after reinstalling
    assert to_alice.decrypt(to_bob.encrypt(b"new session")) == b"new session"
    assert len(bob.sessions["alice:0"].previous) == 1
    assert to_alice.decrypt(on_old_session) == b"sent on the old session"


def test_decrypting_without_a_session_says_so() -> None:
    _, _, to_bob, _ = _established()
    stranger = SessionCipher(ProtocolStore.generate(), "alice:0")
    with pytest.raises(NoSession):
        stranger.decrypt(to_bob.encrypt(b"not for you"))


def test_old_receiving_chains_are_dropped() -> None:
    _, bob, to_bob, to_alice = _established()
    for turn in range(MAX_RECEIVER_CHAINS + 3):
        assert to_alice.decrypt(to_bob.encrypt(f"a{turn}".encode())) == f"a{turn}".encode()
        assert to_bob.decrypt(to_alice.encrypt(f"b{turn}".encode())) == f"b{turn}".encode()
    state = bob.sessions["alice:0"].current
    assert state is not None
    assert len(state.receiver_chains) == MAX_RECEIVER_CHAINS
