"""The node a logout keeps is stripped of secrets; the engine's WhatsApp Web version is read
from its Go library."""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

import pytest

from waqr.engine import child as child_module
from waqr.engine import protocol as p
from waqr.engine.child import EngineChild, WhatsmeowWatch
from waqr.engine.stream_node import MAX_NODE, sanitise
from waqr.engine.version import (
    engine_version,
    module_version,
    neonize_library,
    read_engine_version,
    wa_web_version,
)
from waqr.engine.wire import decode_event, encode_event

pytestmark = pytest.mark.timeout(20)


def test_a_plain_device_removed_node_is_kept_as_it_is() -> None:
    node = '<stream:error code="401"><conflict type="device_removed"/></stream:error>'
    assert sanitise(node) == node


def test_no_phone_number_jid_user_or_key_survives() -> None:
    node = (
        '<stream:error code="401" t="1790000000" jid="15550001111:3@s.whatsapp.net">'
        '<conflict type="device_removed" by="123456789012345@lid"/>'
        "<text>from +15550001111 key 0a1b2c3d4e5f60718293a4b5c6d7e8f9</text>"
        "<sig>QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=</sig></stream:error>"
    )
    clean = sanitise(node)
    for secret in ("15550001111", "123456789012345", "0a1b2c3d4e5f", "QUJDREVG"):
        assert secret not in clean
    assert 'jid="…@s.whatsapp.net"' in clean
    assert 'by="…@lid"' in clean
    assert 't="1790000000"' in clean  # a time explains, it identifies no one
    assert "[32 chars]" in clean
    assert '<conflict type="device_removed"' in clean


def test_long_words_stay_and_the_node_is_bounded() -> None:
    assert "device_removed_by_primary" in sanitise('<x type="device_removed_by_primary"/>')
    assert len(sanitise("<x>" + "word " * 2000 + "</x>")) == MAX_NODE


def test_nodes_cross_the_pipe_with_their_events() -> None:
    node = '<stream:error code="401"><conflict type="device_removed"/></stream:error>'
    for event in (
        p.LoggedOut(code=401, on_connect=False, node=node),
        p.StreamReplaced(node=None),
        p.StreamError(code="503", node='<stream:error code="503"/>'),
    ):
        assert decode_event(encode_event(event)) == event


def test_the_version_triple_is_the_one_2_3000_array() -> None:
    data = b"\0" * 8 + struct.pack("<III", 2, 3000, 1047769893) + b"\0" * 4
    assert wa_web_version(data) == "2.3000.1047769893"
    # Two candidates (or none) is not a version: never guess.
    assert wa_web_version(data + data) is None
    assert wa_web_version(b"\0" * 64) is None
    # Off the 4-byte alignment of a Go [3]uint32: not the array.
    assert wa_web_version(b"\0" + data) is None


def test_module_versions_come_from_go_buildinfo_and_follow_replacements() -> None:
    def buildinfo(modinfo: str) -> bytes:
        go = b"go1.26.8"
        info = modinfo.encode()
        assert len(info) < 128
        header = b"\xff Go buildinf:" + bytes([8, 2]) + b"\0" * 16
        return header + bytes([len(go)]) + go + bytes([len(info)]) + info

    plain = "path\tx\ndep\tgo.mau.fi/whatsmeow\tv0.0.1\th1:abc=\n"
    assert module_version(buildinfo(plain), "go.mau.fi/whatsmeow") == "v0.0.1"
    replaced = plain + "=>\tgithub.com/fork/whatsmeow\tv0.0.2\th1:def=\n"
    assert module_version(buildinfo(replaced), "go.mau.fi/whatsmeow") == "v0.0.2"
    assert module_version(buildinfo(plain), "go.mau.fi/other") is None
    assert module_version(b"no buildinfo here", "go.mau.fi/whatsmeow") is None


def test_the_installed_engine_announces_a_2_3000_version() -> None:
    version = engine_version()
    assert version is not None
    assert version.whatsapp_web is not None and version.whatsapp_web.startswith("2.3000.")
    assert version.whatsmeow is not None and version.whatsmeow.startswith("v")
    assert version.neonize == neonize_library()[1]


def test_a_file_that_is_no_library_has_no_version(tmp_path: Path) -> None:
    fake = tmp_path / "neonize-linux-amd64.so"
    fake.write_bytes(b"not an ELF file at all")
    version = read_engine_version(fake, "0.5.2")
    assert (version.whatsapp_web, version.whatsmeow) == (None, None)


class _Child:
    def __init__(self) -> None:
        self.nodes: list[str] = []

    def note_error_node(self, text: str) -> None:
        self.nodes.append(text)


def _record(name: str, level: int, text: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, "%s", (text,), None)


async def test_the_engine_reads_the_node_off_whatsmeows_receive_log_and_logs_no_jid() -> None:
    child = _Child()
    watch = WhatsmeowWatch(logging.WARNING, child, asyncio.get_running_loop())  # type: ignore[arg-type]
    node = '<stream:error code="401"><conflict type="device_removed"/></stream:error>'
    received = _record("whatsmeow.Client.Recv", logging.DEBUG, node)
    assert watch.filter(received) is False  # below the operator's level: read, not logged
    warning = _record(
        "whatsmeow.Client",
        logging.WARNING,
        'Closing handler queue loop in the middle of handling <ib from="15550001111@s.whatsapp.net"'
        "/>",
    )
    assert watch.filter(warning) is True
    assert "15550001111" not in warning.getMessage()
    assert '<ib from="…@s.whatsapp.net"/>' in warning.getMessage()
    await asyncio.sleep(0)
    assert child.nodes == [node]


async def test_a_node_explains_the_event_it_came_with_and_no_later_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(child_module, "NODE_WAIT", 0.05)
    child = EngineChild({}, event_fd=-1)
    node = '<stream:error code="401"><conflict type="device_removed"/></stream:error>'
    # The event first, whatsmeow's log line a moment later (they travel different threads).
    asyncio.get_running_loop().call_later(0.01, child.note_error_node, node)
    assert await child.seen_error_node() == node
    assert await child.seen_error_node() is None  # taken: a later event does not reuse it
    # A node from an earlier connection of the same child explains nothing now.
    child.note_error_node(node)
    monkeypatch.setattr(child_module, "NODE_STALE", -1.0)
    assert await child.seen_error_node() is None
