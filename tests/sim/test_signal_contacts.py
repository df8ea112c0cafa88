"""Simulated contacts and the prekey nodes the server uploads and hands out (whatsmeow's shapes)."""

from __future__ import annotations

import pytest

from waqr.sim.binary import decode_node, encode_node
from waqr.sim.node import JID, Node
from waqr.sim.signal import (
    DuplicateMessage,
    InvalidKey,
    NoSession,
    ProtocolStore,
    SessionCipher,
    encode_text,
)
from waqr.sim.signal.contact import Contact
from waqr.sim.signal.prekeys import (
    PublishedKeys,
    bundle_node,
    parse_bundle_node,
    parse_upload,
    upload_content,
)

ENGINE_DEVICE = JID("15550001111", "s.whatsapp.net", device=7)


def _sizes(node: Node) -> dict[str, object]:
    """Each child's tag with its byte length, or with the same map for its own children."""
    return {c.tag: _sizes(c) if c.children else len(c.data) for c in node.children}


def test_a_bundle_node_has_the_shape_whatsmeow_parses() -> None:
    keys = PublishedKeys.of(ProtocolStore.generate(pre_keys=1))
    node = bundle_node(ENGINE_DEVICE, keys.hand_out(device_id=7))
    assert node.tag == "user" and node.jid("jid") == ENGINE_DEVICE
    assert _sizes(node) == {
        "registration": 4,
        "type": 1,
        "identity": 32,
        "skey": {"id": 3, "value": 32, "signature": 64},
        "key": {"id": 3, "value": 32},
    }
    assert node.child("type").data == b"\x05"  # type: ignore[union-attr]


def test_a_bundle_survives_the_wire() -> None:
    store = ProtocolStore.generate(pre_keys=2)
    bundle = PublishedKeys.of(store).hand_out(device_id=ENGINE_DEVICE.device)
    answer = Node(
        "iq", {"type": "result"}, [Node("list", content=[bundle_node(ENGINE_DEVICE, bundle)])]
    )
    decoded = decode_node(encode_node(answer))
    user = decoded.child("list").child("user")  # type: ignore[union-attr]
    assert user is not None
    assert parse_bundle_node(user) == bundle
    assert bundle.pre_key_id == min(store.pre_keys)
    bundle.verify_signature()


def test_each_one_time_prekey_is_handed_out_once() -> None:
    keys = PublishedKeys.of(ProtocolStore.generate(pre_keys=2))
    handed = [keys.hand_out(device_id=0) for _ in range(3)]
    assert [b.pre_key_id for b in handed[:2]] == [1, 2]
    assert handed[2].pre_key_id is None and handed[2].pre_key is None
    node = bundle_node(ENGINE_DEVICE, handed[2])
    assert node.child("key") is None
    assert parse_bundle_node(node).pre_key_id is None


def test_an_upload_reads_back_as_the_published_keys() -> None:
    keys = PublishedKeys.of(ProtocolStore.generate(pre_keys=5))
    iq = Node("iq", {"xmlns": "encrypt", "type": "set"}, upload_content(keys))
    assert parse_upload(decode_node(encode_node(iq))) == keys


@pytest.mark.parametrize(
    ("tag", "bad"),
    [("type", b"\x06"), ("identity", b"\x01" * 31), ("registration", b"\x00\x01")],
)
def test_a_malformed_upload_is_refused(tag: str, bad: bytes) -> None:
    keys = PublishedKeys.of(ProtocolStore.generate(pre_keys=1))
    content = upload_content(keys)
    for child in content:
        if child.tag == tag:
            child.content = bad
    with pytest.raises(InvalidKey, match=tag):
        parse_upload(Node("iq", {"xmlns": "encrypt", "type": "set"}, content))


def test_an_upload_with_a_forged_signature_is_refused() -> None:
    keys = PublishedKeys.of(ProtocolStore.generate(pre_keys=1))
    other = PublishedKeys.of(ProtocolStore.generate(pre_keys=1))
    keys.identity_key = other.identity_key
    with pytest.raises(InvalidKey, match="signature"):
        parse_upload(Node("iq", {"xmlns": "encrypt", "type": "set"}, upload_content(keys)))


def test_two_contacts_talk_through_the_servers_bundle() -> None:
    alice, bob = Contact.create("+49 151 0000 0001"), Contact.create("+1 555 000 2222")
    server_copy_of_bob = bob.published_keys()
    with pytest.raises(NoSession):
        alice.encrypt_text(bob.jid, "too early")
    fetched = parse_bundle_node(bundle_node(bob.jid, server_copy_of_bob.hand_out(0)))
    alice.start_session(bob.jid, fetched)

    first = alice.encrypt_text(bob.jid, "Hallo Bob")
    assert first.kind == "pkmsg"
    assert bob.decrypt(alice.jid, first).text == "Hallo Bob"
    assert bob.has_session(alice.jid)

    reply = bob.encrypt_text(alice.jid, "hi!", quoted_id="3EB0C0FFEE")
    assert reply.kind == "msg"
    received = alice.decrypt(bob.jid, reply)
    assert (received.text, received.quoted_id) == ("hi!", "3EB0C0FFEE")
    with pytest.raises(DuplicateMessage):
        alice.decrypt(bob.jid, reply)


def test_a_contact_keeps_separate_sessions_per_peer_device() -> None:
    bob = Contact.create("15550002222")
    phone, linked = JID("15550001111", "s.whatsapp.net"), ENGINE_DEVICE
    server_copy_of_bob = bob.published_keys()
    for jid in (phone, linked):
        cipher = SessionCipher(ProtocolStore.generate(), "bob")
        cipher.start_session(server_copy_of_bob.hand_out(0))
        assert bob.decrypt(jid, cipher.encrypt(encode_text(f"from {jid}"))).text == f"from {jid}"
    assert bob.has_session(phone) and bob.has_session(linked)
    assert not bob.has_session(JID("15550001111", "s.whatsapp.net", device=8))


@pytest.mark.parametrize("phone", ["", "+1 555", "1" * 16, "phone"])
def test_a_contact_needs_an_e164_number(phone: str) -> None:
    with pytest.raises(ValueError, match="8 to 15 digits"):
        Contact.create(phone)
