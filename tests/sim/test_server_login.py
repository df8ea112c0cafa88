"""Login connections: success/failure, post-login iqs, keepalive, logout, faults (doc §7-§10)."""

from __future__ import annotations

from tests.sim.fake_wa_client import ConnectFactory, FakeDevice, client_iq, login, paired_device
from waqr.sim.binary import JID, SERVER_JID, Node
from waqr.sim.state import Refusal, StreamFault, World


async def test_login_gets_success_with_time_and_lid(connect: ConnectFactory, world: World) -> None:
    device = await paired_device(connect, world)
    _, success = await login(connect, device)
    assert success is not None and success.tag == "success"
    assert success.attr("t").isdigit() and success.jid("lid") == device.lid


async def test_post_login_iqs_are_answered_as_connect_needs(
    connect: ConnectFactory, world: World
) -> None:
    device = await paired_device(connect, world)
    link, _ = await login(connect, device)
    count = (await link.query(client_iq("1", "encrypt", "get", [Node("count")]))).child("count")
    assert count is not None and count.attr("value") == "0"
    keys = [Node("key", {}, [Node("id", {}, bytes(3)), Node("value", {}, bytes(32))])] * 812
    upload = await link.query(client_iq("2", "encrypt", "set", [Node("list", {}, keys)]))
    assert upload.attr("type") == "result"
    count = (await link.query(client_iq("3", "encrypt", "get", [Node("count")]))).child("count")
    assert count is not None and count.attr("value") == "812"
    active = await link.query(client_iq("4", "passive", "set", [Node("active")]))
    assert active.attr("type") == "result" and active.jid("from") == SERVER_JID


async def test_keepalive_ping_is_answered_by_id(connect: ConnectFactory, world: World) -> None:
    device = await paired_device(connect, world)
    link, _ = await login(connect, device)
    pong = await link.query(client_iq("115.206-1", "w:p", "get"))
    assert pong.attr("type") == "result"


async def test_unknown_iq_namespace_gets_a_fast_error(
    connect: ConnectFactory, world: World
) -> None:
    device = await paired_device(connect, world)
    link, _ = await login(connect, device)
    reply = await link.query(client_iq("9", "w:mystery", "get"))
    error = reply.child("error")
    assert reply.attr("type") == "error" and error is not None and error.attr("code") == "501"


async def test_unknown_device_is_refused_with_401(connect: ConnectFactory, world: World) -> None:
    device = FakeDevice()
    device.jid = JID("15559999999", "s.whatsapp.net", device=4)
    link, failure = await login(connect, device)
    assert failure is not None and failure.tag == "failure" and failure.attr("reason") == "401"
    assert await link.recv() is None


async def test_login_with_another_noise_key_is_refused(
    connect: ConnectFactory, world: World
) -> None:
    device = await paired_device(connect, world)
    impostor = FakeDevice()
    impostor.jid = device.jid
    _, failure = await login(connect, impostor)
    assert failure is not None and failure.attr("reason") == "401"


async def test_planned_temporary_ban_is_sent_once(connect: ConnectFactory, world: World) -> None:
    device = await paired_device(connect, world)
    world.faults.refusals.append(Refusal(402, code=101, expire=3600))
    _, failure = await login(connect, device)
    assert failure is not None and failure.tag == "failure"
    assert (failure.attr("reason"), failure.attr("code"), failure.attr("expire")) == (
        "402",
        "101",
        "3600",
    )
    _, success = await login(connect, device)
    assert success is not None and success.tag == "success"


async def test_refusal_can_target_registration(connect: ConnectFactory, world: World) -> None:
    world.faults.refusals.append(Refusal(405, on="registration"))
    device = FakeDevice()
    link = connect(device)
    await link.handshake(device.registration_payload())
    failure = await link.recv()
    assert failure is not None and failure.tag == "failure" and failure.attr("reason") == "405"


async def test_planned_stream_error_follows_the_activeclient_iq(
    connect: ConnectFactory, world: World
) -> None:
    device = await paired_device(connect, world)
    world.faults.stream_faults.append(StreamFault(conflict="replaced"))
    link, _ = await login(connect, device)
    await link.query(client_iq("4", "passive", "set", [Node("active")]))
    error = await link.recv()
    assert error is not None and error.tag == "stream:error"
    conflict = error.child("conflict")
    assert conflict is not None and conflict.attr("type") == "replaced"
    assert await link.recv() is None


async def test_remote_logout_sends_device_removed_and_forgets_the_device(
    connect: ConnectFactory, world: World
) -> None:
    device = await paired_device(connect, world)
    link, _ = await login(connect, device)
    assert device.jid is not None
    world.unlink(device.jid)
    for session in world.sessions_of(device.jid):
        await session.stream_error(401, "device_removed")
    error = await link.recv()
    assert error is not None and error.attr("code") == "401"
    conflict = error.child("conflict")
    assert conflict is not None and conflict.attr("type") == "device_removed"
    assert await link.recv() is None
    _, failure = await login(connect, device)
    assert failure is not None and failure.attr("reason") == "401"


async def test_ignored_pings_get_no_answer(connect: ConnectFactory, world: World) -> None:
    device = await paired_device(connect, world)
    world.faults.ignore_pings = True
    link, _ = await login(connect, device)
    link.send(client_iq("p1", "w:p", "get"))
    reply = await link.query(client_iq("c1", "encrypt", "get", [Node("count")]))
    assert reply.attr("id") == "c1"


async def test_drop_closes_without_a_stream_error(connect: ConnectFactory, world: World) -> None:
    device = await paired_device(connect, world)
    link, _ = await login(connect, device)
    for session in world.logged_in():
        await session.drop()
    assert await link.recv() is None


async def test_second_login_of_a_device_replaces_the_first(
    connect: ConnectFactory, world: World
) -> None:
    device = await paired_device(connect, world)
    first, _ = await login(connect, device)
    second, success = await login(connect, device)
    assert success is not None and success.tag == "success"
    error = await first.recv()
    assert error is not None and error.tag == "stream:error"
    conflict = error.child("conflict")
    assert conflict is not None and conflict.attr("type") == "replaced"
    assert await first.recv() is None
    pong = await second.query(client_iq("p", "w:p", "get"))
    assert pong.attr("type") == "result"
