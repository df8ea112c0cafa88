"""WABinary encoding and decoding, checked against the byte facts of doc §5."""

from __future__ import annotations

import zlib

import pytest

from waqr.sim.binary import (
    JID,
    SERVER_JID,
    BinaryError,
    Node,
    decode_node,
    encode_node,
    pack_frame,
    unpack_frame,
)
from waqr.sim.tokens import tables


def test_token_positions_match_the_protocol_facts() -> None:
    t = tables()
    singles = {
        "xmlstreamend": 2,
        "s.whatsapp.net": 3,
        "type": 4,
        "id": 8,
        "iq": 25,
        "success": 76,
        "w:p": 87,
        "stream:error": 157,
        "device-identity": 230,
    }
    for text, index in singles.items():
        assert t.single_index(text) == index
    doubles = {
        "active": (0, 1),
        "conflict": (0, 14),
        "replaced": (0, 17),
        "passive": (0, 24),
        "ref": (1, 80),
        "pair-device": (1, 238),
        "failure": (2, 60),
    }
    for text, position in doubles.items():
        assert t.double_index(text) == position
    for text in ("md", "pair-success", "pair-device-sign", "device_removed", "ib"):
        assert t.single_index(text) is None and t.double_index(text) is None


def test_server_jid_is_written_as_the_client_writes_it() -> None:
    encoded = encode_node(Node("iq", {"from": SERVER_JID}))
    # list8(3), "iq" token 25, "from" token 6, JID_PAIR, empty user, s.whatsapp.net token 3
    assert encoded == bytes([248, 3, 25, 6, 250, 0, 3])


def test_client_style_iq_id_decodes_from_nibble_packing() -> None:
    # "115.206-1": 9 chars -> 5 bytes with the odd flag; ids look like this on the wire (doc §5.3)
    packed = bytes([255, 0x85, 0x11, 0x5B, 0x20, 0x6A, 0x1F])
    node = decode_node(bytes([248, 3, 25, 8]) + packed)
    assert node.attr("id") == "115.206-1"


def test_padding_nibble_keeps_its_place_until_the_odd_flag_drops_it() -> None:
    # "123" is 1,2,3,pad with the odd flag; dropping the pad early would also drop the "3".
    node = decode_node(bytes([248, 3, 25, 8, 255, 0x82, 0x12, 0x3F]))
    assert node.attr("id") == "123"


@pytest.mark.parametrize(
    "node",
    [
        Node("iq", {"id": "115.206-1", "type": "result", "to": SERVER_JID}),
        Node(
            "iq",
            {"id": "ABCDEF0123", "xmlns": "md"},
            [Node("pair-device", {}, [Node("ref", {}, b"2@abc,def")] * 6)],
        ),
        Node("success", {"t": "1732470000", "lid": JID("123456", "lid", device=3)}),
        Node("device", {"jid": JID("15550001111", "s.whatsapp.net", device=7)}),
        Node("x", {"jid": JID("1", "msgr", device=2), "other": JID("5", "interop", 3, 0, 9)}),
        Node("stream:error", {"code": "401"}, [Node("conflict", {"type": "device_removed"})]),
        Node("big", {}, b"\x01" * 300),
        Node("huge", {}, b"\x02" * (1 << 20)),
        Node("list", {}, [Node("key", {"n": str(i)}) for i in range(812)]),
        Node("text", {"name": "häppy ünïcode"}, b""),
        Node("lower", {"hex": "abcdef"}),
    ],
)
def test_encode_then_decode_is_the_identity(node: Node) -> None:
    assert decode_node(encode_node(node)) == node


def test_lid_jid_uses_the_ad_jid_form_with_domain_one() -> None:
    encoded = encode_node(Node("s", {"lid": JID("77", "lid", device=0)}))
    assert encoded.endswith(bytes([247, 1, 0, 255, 0x01, 0x77]))  # AD_JID, lid, dev 0, "77"


def test_flag_two_means_a_zlib_body() -> None:
    node = Node("iq", {"id": "1"}, [Node("ping")])
    assert unpack_frame(pack_frame(node, compress=True)) == node
    assert unpack_frame(b"\x02" + zlib.compress(encode_node(node))) == node
    assert pack_frame(node)[0] == 0


@pytest.mark.parametrize(
    "data",
    [b"", bytes([248, 1, 25, 0]), bytes([0]), bytes([248, 3, 25, 8]), bytes([248, 1, 240])],
)
def test_malformed_bytes_raise_binary_error(data: bytes) -> None:
    with pytest.raises(BinaryError):
        decode_node(data)
    with pytest.raises(BinaryError):
        unpack_frame(b"\x00" + data if data else b"")


def test_jid_text_round_trip() -> None:
    for text in (
        "15550001111@s.whatsapp.net",
        "15550001111:3@s.whatsapp.net",
        "9.1:2@lid",
        "s.whatsapp.net",
    ):
        assert str(JID.parse(text)) == text
