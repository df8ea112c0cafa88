"""Prekeys as the WhatsApp server holds and hands them out, in WABinary node form.

A device uploads ``<iq xmlns="encrypt" type="set">`` with ``registration`` (4 bytes, big
endian), ``type`` (0x05), ``identity`` (32 bytes), ``list`` of ``key`` nodes and one ``skey``; a
``key`` is ``<id>`` (3 bytes, big endian) and ``<value>`` (32 bytes), an ``skey`` adds
``<signature>`` (64 bytes). Someone who wants a session asks ``<iq xmlns="encrypt" type="get">``
and gets, per device, ``<user jid=...>`` holding ``registration``, ``type``, ``identity``,
``skey`` and, while any are left, one ``key``: the server hands each one-time prekey out once.
Source: whatsmeow ``prekeys.go`` (uploadPreKeys, fetchPreKeys, nodeToPreKeyBundle; facts only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from waqr.sim.node import JID, Node
from waqr.sim.signal.errors import InvalidKey
from waqr.sim.signal.keys import DJB_TYPE, PreKeyBundle, serialize_public
from waqr.sim.signal.store import ProtocolStore
from waqr.waproto.xeddsa import verify

KEY_ID_SIZE: Final = 3
REGISTRATION_ID_SIZE: Final = 4


@dataclass(frozen=True)
class PublishedSignedPreKey:
    key_id: int
    public: bytes
    signature: bytes


@dataclass
class PublishedKeys:
    """What the server knows of one device's keys: public halves only."""

    registration_id: int
    identity_key: bytes
    signed_pre_key: PublishedSignedPreKey
    one_time: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, store: ProtocolStore) -> PublishedKeys:
        """The keys a device with this store would upload."""
        signed = store.signed_pre_key
        return cls(
            registration_id=store.registration_id,
            identity_key=store.identity.public,
            signed_pre_key=PublishedSignedPreKey(
                signed.key_id, signed.key_pair.public, signed.signature
            ),
            one_time={key_id: key.key_pair.public for key_id, key in store.pre_keys.items()},
        )

    def hand_out(self, device_id: int) -> PreKeyBundle:
        """A bundle for one requester; its one-time prekey is never handed out again."""
        pre_key_id = min(self.one_time) if self.one_time else None
        pre_key = self.one_time.pop(pre_key_id) if pre_key_id is not None else None
        return PreKeyBundle(
            registration_id=self.registration_id,
            device_id=device_id,
            identity_key=self.identity_key,
            signed_pre_key_id=self.signed_pre_key.key_id,
            signed_pre_key=self.signed_pre_key.public,
            signed_pre_key_signature=self.signed_pre_key.signature,
            pre_key_id=pre_key_id,
            pre_key=pre_key,
        )


def _key_node(tag: str, key_id: int, public: bytes, signature: bytes | None = None) -> Node:
    children = [
        Node("id", content=key_id.to_bytes(KEY_ID_SIZE, "big")),
        Node("value", content=public),
    ]
    if signature is not None:
        children.append(Node("signature", content=signature))
    return Node(tag, content=children)


def _bytes_of(parent: Node, tag: str, size: int, what: str) -> bytes:
    child = parent.child(tag)
    if child is None or len(child.data) != size:
        raise InvalidKey(f"{what}: <{tag}> must hold {size} bytes")
    return child.data


def _parse_key_node(node: Node, what: str) -> tuple[int, bytes]:
    key_id = int.from_bytes(_bytes_of(node, "id", KEY_ID_SIZE, what), "big")
    return key_id, _bytes_of(node, "value", 32, what)


def bundle_node(jid: JID, bundle: PreKeyBundle) -> Node:
    """The ``<user>`` node of the server's answer to a prekey fetch."""
    children = [
        Node("registration", content=bundle.registration_id.to_bytes(REGISTRATION_ID_SIZE, "big")),
        Node("type", content=bytes([DJB_TYPE])),
        Node("identity", content=bundle.identity_key),
        _key_node(
            "skey", bundle.signed_pre_key_id, bundle.signed_pre_key, bundle.signed_pre_key_signature
        ),
    ]
    if bundle.pre_key_id is not None and bundle.pre_key is not None:
        children.append(_key_node("key", bundle.pre_key_id, bundle.pre_key))
    return Node("user", {"jid": jid}, children)


def parse_bundle_node(node: Node) -> PreKeyBundle:
    """A ``<user>`` node read the way whatsmeow reads it (raises ``InvalidKey``)."""
    jid = node.jid("jid") or JID.parse(node.attr("jid"))
    registration = _bytes_of(node, "registration", REGISTRATION_ID_SIZE, "prekey bundle")
    keys = node.child("keys") or node
    signed_node = keys.child("skey")
    if signed_node is None:
        raise InvalidKey("prekey bundle without <skey>")
    signed_id, signed_public = _parse_key_node(signed_node, "signed prekey")
    one_time = keys.child("key")
    pre_key_id, pre_key = _parse_key_node(one_time, "prekey") if one_time else (None, None)
    return PreKeyBundle(
        registration_id=int.from_bytes(registration, "big"),
        device_id=jid.device,
        identity_key=_bytes_of(keys, "identity", 32, "prekey bundle"),
        signed_pre_key_id=signed_id,
        signed_pre_key=signed_public,
        signed_pre_key_signature=_bytes_of(signed_node, "signature", 64, "signed prekey"),
        pre_key_id=pre_key_id,
        pre_key=pre_key,
    )


def upload_content(keys: PublishedKeys) -> list[Node]:
    """The children of a device's prekey upload iq, as whatsmeow sends them."""
    signed = keys.signed_pre_key
    return [
        Node("registration", content=keys.registration_id.to_bytes(REGISTRATION_ID_SIZE, "big")),
        Node("type", content=bytes([DJB_TYPE])),
        Node("identity", content=keys.identity_key),
        Node("list", content=[_key_node("key", i, p) for i, p in sorted(keys.one_time.items())]),
        _key_node("skey", signed.key_id, signed.public, signed.signature),
    ]


def parse_upload(iq: Node) -> PublishedKeys:
    """The keys in a ``<iq xmlns="encrypt" type="set">`` upload (raises ``InvalidKey``)."""
    key_type = iq.child("type")
    if key_type is None or key_type.data != bytes([DJB_TYPE]):
        raise InvalidKey("prekey upload: <type> must be 0x05 (djb)")
    signed_node = iq.child("skey")
    if signed_node is None:
        raise InvalidKey("prekey upload without <skey>")
    signed_id, signed_public = _parse_key_node(signed_node, "signed prekey")
    key_list = iq.child("list")
    one_time = dict(
        _parse_key_node(key, "prekey")
        for key in (key_list.children if key_list else [])
        if key.tag == "key"
    )
    keys = PublishedKeys(
        registration_id=int.from_bytes(
            _bytes_of(iq, "registration", REGISTRATION_ID_SIZE, "prekey upload"), "big"
        ),
        identity_key=_bytes_of(iq, "identity", 32, "prekey upload"),
        signed_pre_key=PublishedSignedPreKey(
            signed_id,
            signed_public,
            _bytes_of(signed_node, "signature", 64, "signed prekey"),
        ),
        one_time=one_time,
    )
    if not verify(
        keys.identity_key, serialize_public(signed_public), keys.signed_pre_key.signature
    ):
        raise InvalidKey("prekey upload: the signed prekey's signature does not verify")
    return keys
