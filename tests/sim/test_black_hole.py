"""``black_hole``: a logged-in connection stays open and the server answers nothing, both ways.

Time is a fake clock the tests move by hand, so no assertion depends on how fast anything runs.
That an iq was never answered is shown by order: one connection is one stream, so when the next
node the client reads answers a later iq, the earlier one got no answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.sim.fake_wa_client import (
    ClientLink,
    ConnectFactory,
    FakeDevice,
    client_iq,
    login,
    paired_device,
    post_faults,
    register,
    scan_and_answer,
)
from waqr.sim.binary import Node
from waqr.sim.server import Session
from waqr.sim.state import LinkedDevice, World


class FakeClock:
    """Stands in for ``asyncio.sleep``: a sleeper wakes only when the test moves time past it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, wake))
        await wake

    @property
    def sleepers(self) -> int:
        return sum(not wake.done() for _, wake in self._sleepers)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, wake in list(self._sleepers):
            if due <= self.now:
                self._sleepers.remove((due, wake))
                if not wake.done():
                    wake.set_result(None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(clock: FakeClock) -> World:
    """Overrides conftest's: the same world, on the fake clock (``connect`` serves this one)."""
    return World(default_phone="15550001111", sleep=clock.sleep)


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for state the server changes in its own tasks."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.005)


def _session_of(world: World, device: FakeDevice) -> Session:
    assert device.jid is not None
    (session,) = world.sessions_of(device.jid)
    assert isinstance(session, Session)
    return session


async def _ping_swallowed(link: ClientLink, session: Session, iq_id: str) -> None:
    """Send a ping and wait until the server has read it and dropped it."""
    before = session.black_hole.frames_swallowed
    link.send(client_iq(iq_id, "w:p", "get"))
    await _until(lambda: session.black_hole.frames_swallowed == before + 1)


async def _next_pong(link: ClientLink, iq_id: str) -> None:
    """The next node the client reads is the answer to this ping (so none came before it)."""
    pong = await link.query(client_iq(iq_id, "w:p", "get"))
    assert pong.attr("type") == "result"


async def _logged_in(connect: ConnectFactory, world: World) -> tuple[FakeDevice, ClientLink]:
    device = await paired_device(connect, world)
    link, success = await login(connect, device)
    assert success is not None and success.tag == "success"
    return device, link


# -- holes opened now ---------------------------------------------------------------------------


async def test_a_black_holed_session_answers_no_ping_until_the_hole_is_lifted(
    api: httpx.AsyncClient, connect: ConnectFactory, world: World
) -> None:
    device, link = await _logged_in(connect, world)
    session = _session_of(world, device)
    view = await post_faults(api, {"black_hole": {"seconds": None, "now": True}})
    assert view["affected_sessions"] == 1 and view["black_holed_sessions"] == 1
    assert view["black_hole"] is None  # a hole opened now is not a setting for new logins
    await _ping_swallowed(link, session, "p1")
    await _ping_swallowed(link, session, "p2")
    assert (await post_faults(api, {"black_hole": None}))["black_holed_sessions"] == 0
    await _next_pong(link, "p3")  # p1 and p2 stay unanswered, as with a real black hole
    assert session.black_hole.frames_swallowed == 2


async def test_recover_answers_the_next_ping_on_the_same_connection(
    api: httpx.AsyncClient, connect: ConnectFactory, world: World, clock: FakeClock
) -> None:
    device, link = await _logged_in(connect, world)
    session = _session_of(world, device)
    await post_faults(api, {"black_hole": {"seconds": 5, "then": "recover", "now": True}})
    await _ping_swallowed(link, session, "p1")
    await session.send_node(Node("ib", {}, [Node("offline", {"count": "0"})]))
    assert session.black_hole.nodes_swallowed == 1  # a notification is lost too
    await _until(lambda: clock.sleepers == 1)
    clock.advance(4.5)
    await _ping_swallowed(link, session, "p2")  # not yet
    clock.advance(0.5)
    await _until(lambda: not session.black_hole.active)
    await _next_pong(link, "p3")
    assert _session_of(world, device) is session and not link.conn.closed


async def test_close_hangs_up_the_socket_when_the_hole_ends(
    api: httpx.AsyncClient, connect: ConnectFactory, world: World, clock: FakeClock
) -> None:
    device, link = await _logged_in(connect, world)
    session = _session_of(world, device)
    await post_faults(api, {"black_hole": {"seconds": 30, "then": "close", "now": True}})
    await _ping_swallowed(link, session, "p1")
    await _until(lambda: clock.sleepers == 1)
    clock.advance(30)
    assert await link.recv() is None  # the end of the stream, with no pong before it
    assert link.conn.hung_up
    assert world.logged_in() == []


async def test_now_reaches_only_live_logged_in_sessions(
    api: httpx.AsyncClient, connect: ConnectFactory, world: World
) -> None:
    before, before_link = await _logged_in(connect, world)
    registering = FakeDevice()
    registration = connect(registering)
    refs = await register(registration, registering)
    view = await post_faults(api, {"black_hole": {"seconds": None, "now": True}})
    assert view["affected_sessions"] == 1
    await _ping_swallowed(before_link, _session_of(world, before), "p1")
    # The connection showing QR codes still pairs; a login made afterwards answers at once.
    linked = await scan_and_answer(world, registration, registering, registering.qr_string(refs[0]))
    assert isinstance(linked, LinkedDevice)
    after, after_link = await _logged_in(connect, world)
    await _next_pong(after_link, "p2")
    assert not _session_of(world, after).black_hole.active


async def test_a_stream_error_in_a_hole_is_lost_but_its_close_is_not(
    api: httpx.AsyncClient, connect: ConnectFactory, world: World
) -> None:
    device, link = await _logged_in(connect, world)
    await post_faults(api, {"black_hole": {"seconds": None, "now": True}})
    await post_faults(api, {"stream_error": {"code": 503, "now": True}})
    assert await link.recv() is None  # closed, and the <stream:error> never came first
    assert world.logged_in() == []


# -- holes for the next logins -----------------------------------------------------------------


async def test_after_login_opens_the_hole_only_once_the_delay_has_passed(
    api: httpx.AsyncClient, connect: ConnectFactory, world: World, clock: FakeClock
) -> None:
    device = await paired_device(connect, world)
    setting = {"seconds": 3.0, "then": "recover", "after_login": 2.0}
    view = await post_faults(api, {"black_hole": setting})
    assert view["black_hole"] == {**setting, "now": False} and view["affected_sessions"] == 0
    link, _ = await login(connect, device)
    session = _session_of(world, device)
    await _next_pong(link, "p1")
    await _until(lambda: clock.sleepers == 1)
    clock.advance(1.5)
    await _next_pong(link, "p2")
    clock.advance(0.5)
    await _until(lambda: session.black_hole.active)
    await _ping_swallowed(link, session, "p3")
    clock.advance(3)
    await _until(lambda: not session.black_hole.active)
    await _next_pong(link, "p4")


async def test_the_setting_silences_every_login_from_its_first_iq_until_cleared(
    api: httpx.AsyncClient, connect: ConnectFactory, world: World
) -> None:
    device = await paired_device(connect, world)
    await post_faults(api, {"black_hole": {"seconds": None}})
    for attempt in range(2):  # the setting lasts: each new login falls into the hole
        link, success = await login(connect, device)
        assert success is not None and success.tag == "success"
        await _ping_swallowed(link, _session_of(world, device), f"p{attempt}")
        await link.conn.close()
        await _until(lambda: world.logged_in() == [])
    link, _ = await login(connect, device)
    view = await post_faults(api, {"clear": True})
    assert view["black_hole"] is None and view["black_holed_sessions"] == 0
    await _next_pong(link, "p-cleared")  # clear lifted the live hole too
    link, _ = await login(connect, device)
    await _next_pong(link, "p-new")  # and new logins are answered


# -- the API ----------------------------------------------------------------------------------


async def test_get_faults_shows_the_setting_and_null_turns_it_off(
    api: httpx.AsyncClient, world: World
) -> None:
    assert (await api.get("/faults")).json()["black_hole"] is None
    await post_faults(api, {"black_hole": {"seconds": 0.5, "then": "close", "after_login": 60}})
    shown = (await api.get("/faults")).json()["black_hole"]
    assert shown == {"seconds": 0.5, "then": "close", "now": False, "after_login": 60}
    assert (await post_faults(api, {"refs": 2}))["black_hole"] == shown  # untouched by others
    assert (await post_faults(api, {"black_hole": None}))["black_hole"] is None
    assert world.faults.black_hole is None


@pytest.mark.parametrize(
    ("hole", "field"),
    [
        ({}, "seconds"),
        ({"seconds": 0.4}, "seconds"),
        ({"seconds": 3601}, "seconds"),
        ({"seconds": -1}, "seconds"),
        ({"seconds": "soon"}, "seconds"),
        ({"seconds": 5, "then": "explode"}, "then"),
        ({"seconds": None, "then": "close"}, "then"),
        ({"seconds": 5, "after_login": -1}, "after_login"),
        ({"seconds": 5, "after_login": 3601}, "after_login"),
        ({"seconds": 5, "now": True, "after_login": 2}, "after_login"),
        ({"seconds": 5, "now": "sometimes"}, "now"),
        ({"seconds": 5, "secs": 5}, "secs"),
        (5, "black_hole"),
    ],
)
async def test_bad_black_holes_are_refused_with_json_naming_the_field(
    api: httpx.AsyncClient, world: World, hole: Any, field: str
) -> None:
    response = await api.post("/faults", json={"black_hole": hole})
    assert response.status_code == 422
    locations = [error["loc"] for error in response.json()["detail"]]
    assert any(field in location for location in locations), locations
    assert world.faults.black_hole is None


async def test_nan_seconds_are_refused(api: httpx.AsyncClient) -> None:
    body = b'{"black_hole": {"seconds": NaN}}'
    response = await api.post("/faults", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
