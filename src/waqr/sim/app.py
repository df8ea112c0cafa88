"""``Simulator``: the whole fake WhatsApp on loopback, and the ``waqr sim`` entry point.

Pieces: the front door (CONNECT/SOCKS5 proxy -> TLS -> WebSocket -> frames, ``frontdoor.py``),
one ``server.Session`` per connection, the shared ``state.World``, and the control API
(``phone.py``) served by uvicorn. A bot reaches it with its proxy set to ``proxy_url``, the CA in
``SSL_CERT_FILE`` and a neonize copy whose trusted Noise root is ``root_public_key`` (doc §1-§2).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from pathlib import Path
from types import TracebackType
from typing import Final

import uvicorn

from waqr.sim import rootkey
from waqr.sim.certs import ServerIdentity, load_or_create_root
from waqr.sim.frontdoor import FrontDoor
from waqr.sim.phone import create_control_app
from waqr.sim.server import ConnectionHandler
from waqr.sim.state import World

log = logging.getLogger("waqr.sim")

LOOPBACK: Final = "127.0.0.1"
STARTUP_TIMEOUT: Final = 10.0


def require_loopback(host: str) -> str:
    """``host`` if it is a loopback address; the simulator must never face a network.

    Its CA makes any client that trusts it accept a fake web.whatsapp.com, its proxies tunnel
    anything, and its control API (scan, log out, faults) has no authentication.
    """
    if host == "localhost":
        return host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the simulator listens on loopback only, not on {host!r}")
    return host


class Simulator:
    """Front door + protocol server + control API, started and stopped together."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = LOOPBACK,
        control_port: int = 0,
        proxy_port: int = 0,
        socks_port: int = 0,
        default_phone: str = "15550001111",
    ) -> None:
        self.state_dir = state_dir.resolve()  # printed for people and passed to child processes
        self.host = require_loopback(host)
        self.world = World(default_phone=default_phone)
        self.identity = ServerIdentity.create(load_or_create_root(self.state_dir))
        self.front_door = FrontDoor(
            ConnectionHandler(self.world, self.identity),
            host=host,
            state_dir=self.state_dir,
            proxy_port=proxy_port,
            socks_port=socks_port,
        )
        self._control_port = control_port
        self._control: uvicorn.Server | None = None
        self._control_task: asyncio.Task[None] | None = None

    @property
    def root_public_key(self) -> bytes:
        """The 32-byte Noise root the client must trust (patched into neonize, doc §1)."""
        return self.identity.root_public_key

    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:PORT``: give it to neonize as ``ProxySettings(proxy_address=...)``."""
        return self.front_door.proxy_url

    @property
    def socks_url(self) -> str:
        return self.front_door.socks_url

    @property
    def ca_cert_path(self) -> Path:
        """The CA the client must trust for web.whatsapp.com (``SSL_CERT_FILE``)."""
        return self.front_door.ca_cert_path

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self._control_port}"

    async def start(self) -> None:
        await self.front_door.start()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self._control_port))
        except OSError:
            listener.close()
            await self.front_door.stop()
            raise
        self._control_port = listener.getsockname()[1]
        config = uvicorn.Config(
            create_control_app(self.world, front_door=self.front_door),
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._control = uvicorn.Server(config)
        self._control_task = asyncio.create_task(
            self._control.serve(sockets=[listener]), name="sim-control-api"
        )
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not self._control.started:
                if self._control_task.done():
                    self._control_task.result()  # raises what stopped it
                    raise RuntimeError("control API stopped during start-up")
                await asyncio.sleep(0.01)
        log.info("simulator listening: proxy %s, control %s", self.proxy_url, self.control_url)

    async def stop(self) -> None:
        for session in list(self.world.sessions.values()):
            await session.drop()
        if self._control is not None and self._control_task is not None:
            self._control.should_exit = True
            await self._control_task
            self._control = self._control_task = None
        await self.front_door.stop()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


def patched_neonize(simulator: Simulator) -> Path:
    """A neonize copy that trusts this simulator's root, to put on PYTHONPATH (``rootkey.py``)."""
    return rootkey.patched_neonize(simulator.root_public_key, simulator.state_dir)


def banner(simulator: Simulator, neonize_path: Path) -> str:
    """What a person needs to point a bot at the simulator: every line pastes into a shell."""
    return "\n".join(
        [
            "# waqr WhatsApp simulator, loopback only. Point a bot at it (paste into its shell):",
            f"export WA_PROXY={simulator.proxy_url}",
            f"export SSL_CERT_FILE={simulator.ca_cert_path}",
            "# neonize patched to trust the simulator's root key:",
            f"export PYTHONPATH={neonize_path}",
            f"# SOCKS5 instead: export WA_PROXY={simulator.socks_url}",
            f"# Phone / control API: {simulator.control_url}",
            '#   POST /phone/scan {"qr": "<QR text>"}    POST /phone/logout {"jid": "..."}',
            '#   POST /phone/pair-code {"code": "ABCD-EFGH"}  GET /devices  GET|POST /faults',
            '#   POST /contacts/{number}/send {"text": "..."}  GET /contacts/{number}/messages',
            "#   POST /contacts/{number}/offline|online   "
            'POST /phone/send {"to": "+49...", "text": "..."}',
            "# NOTE: accounts and linked devices live in memory only. After the simulator",
            "# restarts, every bot linked to it is logged out (401) and must link again.",
            "# Stop with Ctrl-C.",
        ]
    )


async def serve(
    state_dir: Path,
    *,
    host: str = LOOPBACK,
    port: int = 0,
    proxy_port: int = 0,
    socks_port: int = 0,
) -> None:
    """Run until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    simulator = Simulator(
        state_dir, host=host, control_port=port, proxy_port=proxy_port, socks_port=socks_port
    )
    async with simulator:
        neonize_path = await asyncio.to_thread(patched_neonize, simulator)
        # T201: the banner is for the person who started `waqr sim`.
        print(banner(simulator, neonize_path), flush=True)  # noqa: T201
        await stop.wait()


def main(
    host: str = LOOPBACK,
    port: int = 0,
    state_dir: Path | None = None,
    proxy_port: int = 0,
    socks_port: int = 0,
) -> None:
    """``waqr sim``: run the simulator in the foreground. ``port`` is the control API's port.

    Raises ValueError for a non-loopback host and OSError for a port that cannot be bound.
    """
    asyncio.run(
        serve(
            state_dir or Path(".waqr-sim"),
            host=host,
            port=port,
            proxy_port=proxy_port,
            socks_port=socks_port,
        )
    )
