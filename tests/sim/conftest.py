"""Fixtures for the simulator's tests: a world, a server identity, in-memory connections, and a
whole simulator with the neonize copy that trusts it (for the tests with the real engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.sim.fake_wa_client import ConnectFactory, in_memory_server
from waqr.sim.app import Simulator, patched_neonize
from waqr.sim.certs import ServerIdentity, load_or_create_root
from waqr.sim.phone import create_control_app
from waqr.sim.state import World


@pytest.fixture
def world() -> World:
    return World(default_phone="+1 555 000 1111")


@pytest.fixture
def identity(tmp_path: Path) -> ServerIdentity:
    return ServerIdentity.create(load_or_create_root(tmp_path))


@pytest.fixture
async def connect(world: World, identity: ServerIdentity) -> AsyncIterator[ConnectFactory]:
    """Open in-memory connections served by the real handler; all closed at the end."""
    async with in_memory_server(world, identity) as open_link:
        yield open_link


@pytest.fixture
async def api(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The control API of ``world`` (a test module may override ``world``), in process."""
    transport = httpx.ASGITransport(app=create_control_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    """A running simulator. After pairing it lingers instead of dropping the socket: the bare
    client that loses the race against the 515 never redials (test_simulator_with_neonize.py)."""
    async with Simulator(tmp_path / "sim") as sim:
        sim.world.faults.after_pair = "linger"
        yield sim


@pytest.fixture
async def neonize_path(simulator: Simulator) -> Path:
    """A neonize copy whose Noise root key is the simulator's."""
    return await asyncio.to_thread(patched_neonize, simulator)
