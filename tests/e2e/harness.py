"""End-to-end harness: the simulator in a background thread of the test process (it is plain
asyncio, no neonize), and real `waqr bot` processes whose engine reaches it through its proxy,
trusting its CA and its root key (a patched neonize copy on PYTHONPATH)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.procs import ServiceProcess, wait_until
from waqr.sim.app import Simulator, patched_neonize
from waqr.sim.frontdoor import FrontDoorFault

T = TypeVar("T")


class SimThread:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.sim: Simulator | None = None
        self.neonize_path: Path | None = None

    def _run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> SimThread:
        self._thread.start()

        async def boot() -> Simulator:
            sim = Simulator(self.state_dir)
            await sim.start()
            return sim

        self.sim = self._run(boot())
        self.neonize_path = patched_neonize(self.sim)
        return self

    def stop(self) -> None:
        if self.sim is not None:
            with contextlib.suppress(Exception):
                self._run(self.sim.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the simulator's loop (its state is not thread-safe)."""

        async def wrapped() -> T:
            return fn()

        result: T = self._run(wrapped())
        return result

    def set_front_door_fault(self, fault: FrontDoorFault) -> None:
        assert self.sim is not None
        sim = self.sim

        def apply() -> None:
            sim.front_door.fault = fault

        self.call(apply)

    # --- the simulated phone (its HTTP control API) --------------------------------------
    @property
    def control(self) -> str:
        assert self.sim is not None
        return self.sim.control_url

    def scan(self, qr: str) -> dict[str, Any]:
        reply = httpx.post(self.control + "/phone/scan", json={"qr": qr}, timeout=20)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def enter_code(self, code: str) -> dict[str, Any]:
        reply = httpx.post(self.control + "/phone/pair-code", json={"code": code}, timeout=30)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def logout(self, jid: str) -> None:
        httpx.post(self.control + "/phone/logout", json={"jid": jid}, timeout=20).raise_for_status()

    def faults(self, **body: Any) -> dict[str, Any]:
        reply = httpx.post(self.control + "/faults", json=body, timeout=20)
        reply.raise_for_status()
        result: dict[str, Any] = reply.json()
        return result

    def devices(self) -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = httpx.get(self.control + "/devices", timeout=10).json()
        return body

    def bot_env(self, via: str = "http") -> dict[str, str]:
        assert self.sim is not None
        return {
            "WA_PROXY": self.sim.proxy_url if via == "http" else self.sim.socks_url,
            "SSL_CERT_FILE": str(self.sim.ca_cert_path),
            "PYTHONPATH": str(self.neonize_path),
            # The bot's connection doctor probes what its engine talks to: the simulator.
            "WAQR_DOCTOR_CA_BUNDLE": str(self.sim.ca_cert_path),
            "WAQR_DOCTOR_ROOT_KEY": self.sim.root_public_key.hex(),
        }


@contextlib.contextmanager
def simulator(state_dir: Path) -> Iterator[SimThread]:
    sim = SimThread(state_dir).start()
    try:
        yield sim
    finally:
        sim.stop()


def bot_on(sim: SimThread, data_dir: Path, **env: str) -> ServiceProcess:
    # A short backoff cap: a healed fault is noticed in seconds, not in a minute. A short
    # login deadline: the simulator drops the socket right after 515, as WhatsApp does, and
    # whatsmeow then sometimes never redials; the session's deadline is what recovers.
    defaults = {"WAQR_RECONNECT_BACKOFF_MAX": "4", "WAQR_LOGIN_TIMEOUT": "6"}
    return ServiceProcess(data_dir, env={**defaults, **sim.bot_env(), **env})


@contextlib.contextmanager
def running_on(sim: SimThread, data_dir: Path, **env: str) -> Iterator[ServiceProcess]:
    """A started `waqr bot` on the simulator, stopped on the way out."""
    bot = bot_on(sim, data_dir, **env).start()
    try:
        yield bot
    finally:
        bot.stop()


def status_of(bot: ServiceProcess) -> dict[str, Any]:
    return bot.status()


def wait_status(bot: ServiceProcess, state: str, timeout: float = 30) -> dict[str, Any]:
    result: dict[str, Any] = wait_until(
        lambda: (s := bot.status())["status"] == state and s, timeout
    )
    return result


def wait_reason(bot: ServiceProcess, code: str, timeout: float = 30) -> dict[str, Any]:
    result: dict[str, Any] = wait_until(
        lambda: (
            (s := bot.status())["lastDisconnectReason"]
            and s["lastDisconnectReason"]["code"] == code
            and s
        ),
        timeout,
    )
    return result


def current_qr(bot: ServiceProcess, timeout: float = 30) -> dict[str, Any]:
    result: dict[str, Any] = wait_until(lambda: (q := bot.get("/qr").json())["qr"] and q, timeout)
    return result


def link(sim: SimThread, bot: ServiceProcess) -> dict[str, Any]:
    """Scan the bot's QR with the simulated phone; wait for connected."""
    device = sim.scan(current_qr(bot)["qr"])
    wait_status(bot, "connected", 30)
    return device
