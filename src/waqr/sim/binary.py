"""WABinary: the compact XML-like node format carried inside every transport frame (doc §5).

A node is ``tag``, string-keyed attributes (values are strings or JIDs) and optional content
(raw bytes or child nodes). The client compresses strings into dictionary tokens and packed
nibble/hex forms, so the decoder understands all of them; the encoder uses them too, which the
client also accepts (doc §5.4).
"""

from __future__ import annotations

import zlib
from typing import Final

from waqr.sim.node import DEFAULT_SERVER, JID, SERVER_JID, AttrValue, Content, Node
from waqr.sim.tokens import tables

__all__ = [
    "JID",
    "SERVER_JID",
    "AttrValue",
    "BinaryError",
    "Content",
    "Node",
    "decode_node",
    "encode_node",
    "pack_frame",
    "unpack_frame",
]

# Tag bytes, doc §5.2.
LIST_EMPTY: Final = 0
DICTIONARY_0: Final = 236
DICTIONARY_3: Final = 239
INTEROP_JID: Final = 245
FB_JID: Final = 246
AD_JID: Final = 247
LIST_8: Final = 248
LIST_16: Final = 249
JID_PAIR: Final = 250
HEX_8: Final = 251
BINARY_8: Final = 252
BINARY_20: Final = 253
BINARY_32: Final = 254
NIBBLE_8: Final = 255

PACKED_MAX: Final = 127
FLAG_COMPRESSED: Final = 0x02

# AD_JID domain byte <-> server (doc §5.3); any other byte is an "agent" on s.whatsapp.net.
_DOMAIN_SERVERS: Final = {1: "lid", 128: "hosted", 129: "hosted.lid"}
_SERVER_DOMAINS: Final = {server: domain for domain, server in _DOMAIN_SERVERS.items()}

_NIBBLES: Final = "0123456789-."
_HEX: Final = "0123456789ABCDEF"


class BinaryError(ValueError):
    """A byte string that is not a well-formed WABinary node (or a node that cannot be encoded)."""


# ---------------------------------------------------------------- encoding


def encode_node(node: Node) -> bytes:
    """The node's bytes without the frame's flag byte."""
    out = bytearray()
    _write_node(out, node)
    return bytes(out)


def pack_frame(node: Node, *, compress: bool = False) -> bytes:
    """Frame plaintext: flag byte (0 plain, 2 zlib) + node, doc §5.1."""
    body = encode_node(node)
    return bytes([FLAG_COMPRESSED]) + zlib.compress(body) if compress else b"\x00" + body


def _write_node(out: bytearray, node: Node) -> None:
    attrs = {k: v for k, v in node.attrs.items() if v != ""}
    has_content = node.content is not None
    _write_list_start(out, 1 + 2 * len(attrs) + (1 if has_content else 0))
    _write_string(out, node.tag)
    for key, value in attrs.items():
        _write_string(out, key)
        if isinstance(value, JID):
            _write_jid(out, value)
        else:
            _write_string(out, value)
    if isinstance(node.content, bytes):
        _write_bytes(out, node.content)
    elif isinstance(node.content, list):
        _write_list_start(out, len(node.content))
        for child in node.content:
            _write_node(out, child)


def _write_list_start(out: bytearray, size: int) -> None:
    if size == 0:
        out.append(LIST_EMPTY)
    elif size < 256:
        out += bytes([LIST_8, size])
    elif size < 65536:
        out.append(LIST_16)
        out += size.to_bytes(2, "big")
    else:
        raise BinaryError(f"list of {size} items is too long")


def _write_bytes(out: bytearray, value: bytes) -> None:
    size = len(value)
    if size < 256:
        out += bytes([BINARY_8, size])
    elif size < 1 << 20:
        out.append(BINARY_20)
        out += size.to_bytes(3, "big")
    elif size < 1 << 31:
        out.append(BINARY_32)
        out += size.to_bytes(4, "big")
    else:
        raise BinaryError("byte string is too long")
    out += value


def _write_string(out: bytearray, value: str) -> None:
    tokens = tables()
    single = tokens.single_index(value)
    if single is not None:
        out.append(single)
        return
    double = tokens.double_index(value)
    if double is not None:
        out += bytes([DICTIONARY_0 + double[0], double[1]])
    elif value and len(value) <= PACKED_MAX and all(c in _NIBBLES for c in value):
        _write_packed(out, value, NIBBLE_8, _NIBBLES)
    elif value and len(value) <= PACKED_MAX and all(c in _HEX for c in value):
        # Only upper-case hex: the client's unpacker always yields upper case.
        _write_packed(out, value, HEX_8, _HEX)
    else:
        _write_bytes(out, value.encode("utf-8", "surrogateescape"))


def _write_packed(out: bytearray, value: str, tag: int, alphabet: str) -> None:
    nibbles = [alphabet.index(c) for c in value]
    odd = len(nibbles) % 2
    if odd:
        nibbles.append(15)  # padding nibble, dropped again by the reader (odd flag)
    out += bytes([tag, (len(nibbles) // 2) | (0x80 if odd else 0)])
    out += bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _write_jid(out: bytearray, jid: JID) -> None:
    domain = _SERVER_DOMAINS.get(jid.server)
    if domain is not None or (jid.server == DEFAULT_SERVER and (jid.device or jid.agent)):
        out += bytes([AD_JID, jid.agent if domain is None else domain, jid.device])
        _write_string(out, jid.user)
    elif jid.server == "msgr":
        out.append(FB_JID)
        _write_string(out, jid.user)
        out += jid.device.to_bytes(2, "big")
    elif jid.server == "interop":
        out.append(INTEROP_JID)
        _write_string(out, jid.user)
        out += jid.device.to_bytes(2, "big") + jid.integrator.to_bytes(2, "big")
    else:
        out.append(JID_PAIR)
        if jid.user:
            _write_string(out, jid.user)
        else:
            out.append(LIST_EMPTY)
        _write_string(out, jid.server)


# ---------------------------------------------------------------- decoding


def decode_node(data: bytes) -> Node:
    """One node from its bytes (no flag byte); trailing bytes are an error, doc §5.1."""
    reader = _Reader(data)
    node = reader.node()
    if reader.pos != len(data):
        raise BinaryError(f"{len(data) - reader.pos} trailing bytes after the node")
    return node


def unpack_frame(plaintext: bytes) -> Node:
    """A node from frame plaintext: honours the zlib flag bit (0x02), doc §5.1."""
    if not plaintext:
        raise BinaryError("empty frame")
    body = plaintext[1:]
    if plaintext[0] & FLAG_COMPRESSED:
        try:
            body = zlib.decompress(body)
        except zlib.error as exc:
            raise BinaryError("bad zlib stream in a compressed frame") from exc
    return decode_node(body)


_Value = str | bytes | JID | list[Node] | None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BinaryError("unexpected end of node data")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def integer(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def list_size(self, tag: int) -> int:
        if tag == LIST_EMPTY:
            return 0
        if tag == LIST_8:
            return self.byte()
        if tag == LIST_16:
            return self.integer(2)
        raise BinaryError(f"tag {tag} does not start a list")

    def node(self) -> Node:
        size = self.list_size(self.byte())
        tag = self.value(as_text=True)
        if size == 0 or not isinstance(tag, str) or not tag:
            raise BinaryError("node without a tag")
        attrs: dict[str, AttrValue] = {}
        for _ in range((size - 1) // 2):
            key = self.value(as_text=True)
            if not isinstance(key, str):
                raise BinaryError("attribute key is not a string")
            value = self.value(as_text=True)
            if isinstance(value, str | JID):
                attrs[key] = value
            elif value is not None:
                raise BinaryError(f"attribute {key!r} has a non-string value")
        content: Content = None
        if size % 2 == 0:
            raw = self.value(as_text=False)
            if isinstance(raw, str):
                content = raw.encode("utf-8", "surrogateescape")
            elif isinstance(raw, JID):
                content = str(raw).encode()
            else:
                content = raw
        return Node(tag, attrs, content)

    def value(self, *, as_text: bool) -> _Value:
        tag = self.byte()
        if tag == LIST_EMPTY:
            return None
        if tag in (LIST_8, LIST_16):
            return [self.node() for _ in range(self.list_size(tag))]
        if tag in (BINARY_8, BINARY_20, BINARY_32):
            if tag == BINARY_8:
                size = self.byte()
            elif tag == BINARY_20:
                size = self.integer(3) & 0xFFFFF  # top nibble ignored, doc §5.2
            else:
                size = self.integer(4)
            raw = self.take(size)
            return raw.decode("utf-8", "surrogateescape") if as_text else raw
        if DICTIONARY_0 <= tag <= DICTIONARY_3:
            index = self.byte()
            return tables().double[tag - DICTIONARY_0][index]
        if tag == JID_PAIR:
            return self.jid_pair()
        if tag == AD_JID:
            domain, device = self.byte(), self.byte()
            server = _DOMAIN_SERVERS.get(domain, DEFAULT_SERVER)
            agent = 0 if domain in _DOMAIN_SERVERS else domain
            return JID(self.text(), server, device=device, agent=agent)
        if tag == FB_JID:
            user = self.text()
            return JID(user, "msgr", device=self.integer(2))
        if tag == INTEROP_JID:
            user = self.text()
            device, integrator = self.integer(2), self.integer(2)
            return JID(user, "interop", device=device, integrator=integrator)
        if tag in (NIBBLE_8, HEX_8):
            return self.packed(_NIBBLES if tag == NIBBLE_8 else _HEX)
        if 1 <= tag < len(tables().single):
            return tables().single[tag]
        raise BinaryError(f"invalid token {tag} at position {self.pos - 1}")

    def text(self) -> str:
        value = self.value(as_text=True)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise BinaryError("expected a string")
        return value

    def jid_pair(self) -> JID:
        user = self.text()
        server = self.value(as_text=True)
        if not isinstance(server, str):
            raise BinaryError("JID pair without a server")
        return JID(user, server)

    def packed(self, alphabet: str) -> str:
        start = self.byte()
        chars: list[str] = []
        for byte in self.take(start & 0x7F):
            for nibble in (byte >> 4, byte & 0x0F):
                if nibble < len(alphabet):  # for hex, 15 is a real "F"
                    chars.append(alphabet[nibble])
                elif nibble == 15:
                    chars.append("")  # nibble padding keeps its place until the odd flag drops it
                else:
                    raise BinaryError(f"invalid packed nibble {nibble}")
        if start & 0x80:
            chars.pop()
        return "".join(chars)
