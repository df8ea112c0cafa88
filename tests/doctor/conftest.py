"""Fixtures for the doctor's tests: settings aimed at loopback, and the doctor run two ways
(the library in process, and ``waqr doctor --json`` as a subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.doctor.faultservers import closed_port
from waqr.doctor import Report, diagnose
from waqr.settings import load_settings
from waqr.sim.app import Simulator

# Generous: the machine is shared; no test asserts how long anything took.
STEP_TIMEOUT = "3"
NOISE_TIMEOUT = "3"
CLI_TIMEOUT = 90.0


@dataclass
class DoctorRun:
    exit_code: int
    report: dict[str, Any]

    @property
    def verdict(self) -> dict[str, Any]:
        verdict: dict[str, Any] = self.report["verdict"]
        return verdict


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """Settings every doctor test starts from: a fresh data dir, short bounds, no bot."""
    return {
        "WAQR_DATA_DIR": str(tmp_path / "data"),
        "WAQR_DOCTOR_TIMEOUT": STEP_TIMEOUT,
        "WAQR_DOCTOR_NOISE_TIMEOUT": NOISE_TIMEOUT,
        "BOT_URL": f"http://127.0.0.1:{closed_port()}",
    }


Probe = Callable[..., Awaitable[Report]]
RunCli = Callable[..., Awaitable[DoctorRun]]


@pytest.fixture
def probe(base_env: dict[str, str]) -> Probe:
    """The library: ``await probe(WAQR_DOCTOR_HOST=..., ...)``."""

    async def run(**env: str) -> Report:
        return await diagnose(load_settings({**base_env, **env}))

    return run


@pytest.fixture
def run_cli(base_env: dict[str, str]) -> RunCli:
    """``waqr doctor --json`` in a subprocess; the test's loop keeps serving meanwhile."""

    async def run(**env: str) -> DoctorRun:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WA_", "WAQR_", "BOT_", "SSL_CERT"))
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "waqr.cli",
            "doctor",
            "--json",
            env={**inherited, **base_env, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(CLI_TIMEOUT):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        assert out, err.decode()
        return DoctorRun(process.returncode, json.loads(out))

    return run


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    async with Simulator(tmp_path / "sim") as sim:
        yield sim


def sim_env(sim: Simulator, *, via: str = "http") -> dict[str, str]:
    """Aim the doctor at the simulator: its proxy, its CA, its Noise root."""
    return {
        "WA_PROXY": sim.proxy_url if via == "http" else sim.socks_url,
        "WAQR_DOCTOR_CA_BUNDLE": str(sim.ca_cert_path),
        "WAQR_DOCTOR_ROOT_KEY": sim.root_public_key.hex(),
    }
