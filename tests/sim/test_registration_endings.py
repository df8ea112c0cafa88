"""How a registration connection ends, as harshly as WhatsApp ends it.

After pairing the server sends the 515 and drops the socket at once (``after_pair``); when the
client's QR refs run out the server says nothing (the client disconnects itself); a connection
that never pairs is ended with ``<xmlstreamend/>`` after ``unpaired_close_after`` seconds.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.sim.fake_wa_client import (
    ClientLink,
    ConnectFactory,
    FakeDevice,
    client_iq,
    register,
    scan_and_answer,
)
from waqr.sim import registration
from waqr.sim.state import LinkedDevice, World


async def _linked(
    connect: ConnectFactory, world: World
) -> tuple[ClientLink, FakeDevice, LinkedDevice]:
    device = FakeDevice()
    link = connect(device)
    refs = await register(link, device)
    linked = await scan_and_answer(world, link, device, device.qr_string(refs[0]))
    assert isinstance(linked, LinkedDevice)
    return link, device, linked


async def test_by_default_the_515_is_followed_at_once_by_a_dropped_socket(
    connect: ConnectFactory, world: World
) -> None:
    link, _, linked = await _linked(connect, world)
    restart = await link.recv()
    assert restart is not None and restart.tag == "stream:error" and restart.attr("code") == "515"
    assert await link.recv() is None
    assert link.conn.hung_up  # no polite close: the stream just ends (whatsmeow #1013)
    assert world.device(linked.number, linked.device) is linked


async def test_close_without_515_links_the_device_but_never_asks_for_a_restart(
    connect: ConnectFactory, world: World
) -> None:
    world.faults.after_pair = "close_without_515"
    link, _, linked = await _linked(connect, world)
    assert await link.recv() is None
    assert link.conn.hung_up
    assert world.device(linked.number, linked.device) is linked


async def test_linger_keeps_the_socket_open_after_the_515_then_closes_it_politely(
    connect: ConnectFactory, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registration, "LINGER_CLOSE_AFTER", 0.5)
    world.faults.after_pair = "linger"
    link, _, _ = await _linked(connect, world)
    restart = await link.recv()
    assert restart is not None and restart.attr("code") == "515"
    # Still open: the client could close first.
    pong = await link.query(client_iq("after-515", "w:p", "get"))
    assert pong.attr("type") == "result"
    assert await link.recv() is None
    assert not link.conn.hung_up


async def test_server_stays_silent_and_open_when_the_qr_refs_run_out(
    connect: ConnectFactory, world: World
) -> None:
    """whatsmeow shows each ref for 20 s (60 s the first of six) and then disconnects by itself
    (qrchan.go); WhatsApp neither resends refs nor closes in the meantime."""
    world.faults.ref_count = 1
    world.faults.unpaired_close_after = None
    device = FakeDevice()
    link = connect(device)
    await register(link, device)
    await asyncio.sleep(0.3)  # anything the server meant to send unasked would be queued now
    pong = await link.query(client_iq("still-there", "w:p", "get"))  # the very next node
    assert pong.attr("type") == "result"
    assert not link.conn.closed
    assert [s.kind for s in world.sessions.values()] == ["registration"]


async def test_unpaired_connection_is_ended_with_xmlstreamend_after_the_deadline(
    connect: ConnectFactory, world: World
) -> None:
    world.faults.unpaired_close_after = 0.2
    device = FakeDevice()
    link = connect(device)
    await register(link, device)
    end = await link.recv()
    assert end is not None and end.tag == "xmlstreamend" and end.attrs == {}
    assert await link.recv() is None
    assert link.conn.hung_up and world.sessions == {}


async def test_unpaired_deadline_spares_a_connection_that_paired_in_time(
    connect: ConnectFactory, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registration, "LINGER_CLOSE_AFTER", 10.0)
    world.faults.after_pair = "linger"  # keep the paired socket open past the deadline
    world.faults.unpaired_close_after = 1.0
    link, _, _ = await _linked(connect, world)
    restart = await link.recv()
    assert restart is not None and restart.attr("code") == "515"
    await asyncio.sleep(1.2)  # past the deadline
    pong = await link.query(client_iq("paired", "w:p", "get"))  # with no xmlstreamend first
    assert pong.attr("type") == "result"
    assert not link.conn.closed
