"""Fixtures for the simulator's tests: a world, a server identity, and in-memory connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.sim.fake_wa_client import ClientLink, ConnectFactory, FakeDevice, MemoryConn
from waqr.sim.certs import ServerIdentity, load_or_create_root
from waqr.sim.server import ConnectionHandler
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
    handler = ConnectionHandler(world, identity)
    served: list[tuple[MemoryConn, asyncio.Task[None]]] = []

    def open_link(device: FakeDevice) -> ClientLink:
        conn = MemoryConn()
        served.append((conn, asyncio.create_task(handler(conn))))
        return ClientLink(conn, identity.root_public_key, device)

    yield open_link
    for conn, task in served:
        await conn.close()
        async with asyncio.timeout(5):
            await task
