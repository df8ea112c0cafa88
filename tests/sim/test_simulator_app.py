"""The assembled ``Simulator``: everything on loopback, one control API, clean start and stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from waqr.sim.app import Simulator, banner


async def test_simulator_serves_on_loopback_and_prints_how_to_use_it(tmp_path: Path) -> None:
    async with Simulator(tmp_path / "sim") as sim:
        for url in (sim.proxy_url, sim.socks_url, sim.control_url):
            assert "://127.0.0.1:" in url
        assert sim.ca_cert_path.is_file() and len(sim.root_public_key) == 32
        text = banner(sim, Path("/patched"))
        assert f"WA_PROXY={sim.proxy_url}" in text
        assert f"SSL_CERT_FILE={sim.ca_cert_path}" in text and "PYTHONPATH=/patched" in text
        async with httpx.AsyncClient(base_url=sim.control_url) as api:
            assert (await api.get("/devices")).json() == []


async def test_root_key_survives_a_restart_with_the_same_state_dir(tmp_path: Path) -> None:
    async with Simulator(tmp_path / "sim") as first:
        root = first.root_public_key
    async with Simulator(tmp_path / "sim") as second:
        assert second.root_public_key == root


async def test_front_door_faults_are_set_through_the_control_api(tmp_path: Path) -> None:
    async with Simulator(tmp_path / "sim") as sim:
        port = int(sim.proxy_url.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=sim.control_url) as api:
            view = (await api.post("/faults", json={"front_door": "refuse_tcp"})).json()
            assert view["front_door"] == "refuse_tcp"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except ConnectionRefusedError:
                pass
            else:
                writer.close()
                raise AssertionError("the proxy still accepts connections")
            view = (await api.post("/faults", json={"clear": True})).json()
            assert view["front_door"] == "none"
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_simulator_refuses_to_listen_beyond_loopback(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        Simulator(tmp_path / "sim", host=host)
