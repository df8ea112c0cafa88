"""Registration connections: pair-device refs, the phone's scan, pair-success, restart (doc §6)."""

from __future__ import annotations

import asyncio

import pytest

from tests.sim.fake_wa_client import ConnectFactory, FakeDevice, register, scan_and_answer
from waqr.sim.binary import SERVER_JID
from waqr.sim.pairing import parse_qr
from waqr.sim.state import LinkedDevice, PairingFailedError, UnknownQRError, World


async def test_registration_gets_six_printable_refs_by_default(connect: ConnectFactory) -> None:
    device = FakeDevice()
    refs = await register(connect(device), device)
    assert len(refs) == 6 and len(set(refs)) == 6
    assert all(ref.startswith("2@") and "," not in ref and ref.isascii() for ref in refs)


async def test_ref_count_follows_the_fault_plan(connect: ConnectFactory, world: World) -> None:
    world.faults.ref_count = 1
    device = FakeDevice()
    assert len(await register(connect(device), device)) == 1


async def test_scan_links_the_device_and_asks_for_a_restart(
    connect: ConnectFactory, world: World
) -> None:
    device = FakeDevice()
    link = connect(device)
    refs = await register(link, device)
    linked = await scan_and_answer(world, link, device, device.qr_string(refs[2]))
    after = await link.recv()
    assert isinstance(linked, LinkedDevice)
    assert device.jid == linked.jid and str(linked.jid) == "15550001111:1@s.whatsapp.net"
    assert device.lid == linked.lid and device.lid is not None and device.lid.server == "lid"
    assert after is not None and after.tag == "stream:error" and after.attr("code") == "515"
    assert world.device("15550001111", 1) is linked


async def test_pair_success_carries_server_time_and_platform(
    connect: ConnectFactory, world: World
) -> None:
    device = FakeDevice()
    link = connect(device)
    refs = await register(link, device)
    scan = asyncio.create_task(world.scan(parse_qr(device.qr_string(refs[0]))))
    iq = await link.recv()
    assert iq is not None and iq.attr("t").isdigit() and iq.jid("from") == SERVER_JID
    success = iq.child("pair-success")
    assert success is not None
    platform = success.child("platform")
    assert platform is not None and platform.attr("name") == "android"
    link.send(device.answer_pair_success(iq))
    await scan


async def test_second_device_of_a_phone_gets_the_next_device_id(
    connect: ConnectFactory, world: World
) -> None:
    for expected in (1, 2):
        device = FakeDevice()
        link = connect(device)
        refs = await register(link, device)
        linked = await scan_and_answer(world, link, device, device.qr_string(refs[0]))
        assert isinstance(linked, LinkedDevice) and linked.device == expected


async def test_qr_with_a_wrong_adv_secret_is_refused_by_the_client(
    connect: ConnectFactory, world: World
) -> None:
    device = FakeDevice()
    link = connect(device)
    refs = await register(link, device)
    genuine = device.adv_secret
    device.adv_secret = bytes(32)
    qr = device.qr_string(refs[0])
    device.adv_secret = genuine
    outcome = await scan_and_answer(world, link, device, qr)
    assert isinstance(outcome, PairingFailedError) and "hmac-mismatch" in str(outcome)
    assert world.devices == {}


async def test_bad_device_signature_fails_pairing_and_drops_the_client(
    connect: ConnectFactory, world: World
) -> None:
    device = FakeDevice()
    link = connect(device)
    refs = await register(link, device)
    outcome = await scan_and_answer(
        world, link, device, device.qr_string(refs[0]), corrupt_signature=True
    )
    assert isinstance(outcome, PairingFailedError)
    assert await link.recv() is None and world.devices == {}


async def test_unknown_or_foreign_qr_is_not_linked(connect: ConnectFactory, world: World) -> None:
    device, stranger = FakeDevice(), FakeDevice()
    refs = await register(connect(device), device)
    with pytest.raises(UnknownQRError):
        await world.scan(parse_qr(device.qr_string("2@made-up")))
    with pytest.raises(UnknownQRError):
        await world.scan(parse_qr(stranger.qr_string(refs[0])))


async def test_refs_are_withdrawn_when_the_client_goes_away(
    connect: ConnectFactory, world: World
) -> None:
    device = FakeDevice()
    link = connect(device)
    refs = await register(link, device)
    await link.conn.close()
    await asyncio.sleep(0.05)
    with pytest.raises(UnknownQRError):
        await world.scan(parse_qr(device.qr_string(refs[0])))
