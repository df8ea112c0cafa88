"""The assembled ``Simulator``: everything on loopback, one control API, clean start and stop."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.procs import free_port
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


def run_sim(*args: str, state_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "waqr.cli", "sim", "--state-dir", str(state_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_waqr_sim_takes_every_port_from_flags_and_its_banner_pastes_into_a_shell(
    tmp_path: Path,
) -> None:
    control, proxy, socks = free_port(), free_port(), free_port()
    sim = run_sim(
        "--port", str(control), "--proxy-port", str(proxy), "--socks-port", str(socks),
        state_dir=tmp_path / "sim",
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        lines = []
        while not lines or "Stop with Ctrl-C" not in lines[-1]:
            line = sim.stdout.readline()
            assert line, sim.stderr.read() if sim.stderr else ""
            lines.append(line)
        script = tmp_path / "banner.sh"
        script.write_text("".join(lines))
        pasted = subprocess.run(
            ["bash", "-euc", f'source {script}; echo "$WA_PROXY|$SSL_CERT_FILE|$PYTHONPATH"'],
            capture_output=True,
            text=True,
            check=True,
        )
        wa_proxy, ca, neonize = pasted.stdout.strip().split("|")
        assert wa_proxy == f"http://127.0.0.1:{proxy}"
        assert Path(ca).is_file() and Path(neonize).is_dir()
        assert f"socks5://127.0.0.1:{socks}" in "".join(lines)
        assert "memory only" in "".join(lines)  # it says loudly that it forgets links
        assert httpx.get(f"http://127.0.0.1:{control}/devices", timeout=5).json() == []
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.communicate(timeout=30)
    assert sim.returncode == 0


def test_waqr_sim_says_in_one_line_that_a_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = str(squatter.getsockname()[1])
        sim = run_sim("--proxy-port", taken, state_dir=tmp_path / "sim")
        _, err = sim.communicate(timeout=60)
    assert sim.returncode == 2
    assert err.strip().count("\n") == 0, err
    assert err.startswith("waqr sim: cannot listen on 127.0.0.1: Address already in use")
    assert f"--proxy-port {taken}" in err


def test_waqr_sim_refuses_a_network_address_in_one_line(tmp_path: Path) -> None:
    sim = run_sim("--host", "0.0.0.0", state_dir=tmp_path / "sim")
    _, err = sim.communicate(timeout=60)
    assert sim.returncode == 2
    assert err.strip() == "waqr sim: the simulator listens on loopback only, not on '0.0.0.0'"
