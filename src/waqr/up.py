"""``waqr up``: the bot, the bridge and the UI, started as one unit and stopped as one.

- Every child runs under a lifeline (:mod:`waqr.lifeline`): if ``waqr up`` dies, even by
  SIGKILL, the kernel sends the child SIGTERM. The bot's own engine child is tied to the bot
  the same way, so nothing is left holding the credentials or the token.
- The children share one process group of their own. A terminal's Ctrl-C therefore reaches
  only ``waqr up``, which stops the parts in order (UI, bridge, bot); the last step SIGKILLs
  whatever is left in the group.
- SIGTERM and SIGINT are handled here for the whole stack. uvicorn's signal capture is
  switched off for the in-process bridge: it re-raises the signal once it has shut down,
  which would end the process before the children are stopped.
- The banner prints only once every part answers its health check: the bot with the
  instance id this run gave it (not an older bot still on the port), the bridge once it
  listens, the UI on Streamlit's health route. A part that fails to start stops the rest,
  and the exit status is 1 with that part's own last line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx
import uvicorn

from waqr import lifeline
from waqr.bridge.botclient import bot_tls_context
from waqr.errors import StackFailed
from waqr.healthcheck import local_address
from waqr.logs import log_event
from waqr.settings import Settings
from waqr.ui.launch import streamlit_command, ui_environment

log = logging.getLogger("waqr.up")
ui_log = logging.getLogger("waqr.ui.streamlit")

START_DEADLINE = 60.0  # a cold start imports neonize and Streamlit; a loaded machine is slow
STOP_GRACE = 20.0  # the bot's graceful shutdown stops its engine within its own bounds
POLL = 0.2


class _Stopped(Exception):
    """A signal asked the stack to stop while it was still starting."""


class Child:
    """One child process under a lifeline, its output forwarded line by line.

    The bot's lines are already waqr log lines and pass through. Foreign output (Streamlit's)
    is wrapped into waqr's log format, so one stream has one format.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        group: int,
        *,
        foreign: bool,
        death_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.last_line = ""
        self._foreign = foreign
        self.process = subprocess.Popen(
            lifeline.command(os.getpid(), argv, death_signal),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=group,
        )
        self._forwarder = threading.Thread(target=self._forward, name=f"{name}-output", daemon=True)
        self._forwarder.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _forward(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            self.last_line = line
            if self._foreign:
                log_event(ui_log, line)
            else:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    def exited(self) -> int | None:
        return self.process.poll()

    def failure(self) -> str:
        self._forwarder.join(1)  # let the last lines arrive
        status = self.process.returncode
        return f"the {self.name} exited with status {status}: {_gist(self.last_line)}"

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)

    async def wait(self, grace: float) -> bool:
        try:
            await asyncio.to_thread(self.process.wait, grace)
        except subprocess.TimeoutExpired:
            return False
        return True


def _gist(line: str) -> str:
    """A child's last line, readable: the event of a JSON log line, else the line itself."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and "event" in record:
                return str(record["event"])
    return line or "(no output)"


class _Bridge(uvicorn.Server):
    """The bridge served in this process, with signals left to the stack."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _check_free(name: str, host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StackFailed(
                f"the {name} cannot listen on {host}:{port}: {exc.strerror or exc} "
                f"(is another waqr still running? choose another port with --{name}-port)"
            ) from None


@dataclass
class Banner:
    ui_url: str
    api_url: str
    bot_url: str
    token: str
    generated: bool

    def print(self) -> None:
        lines = [
            "",
            "waqr is up.",
            f"  UI:              {self.ui_url}",
            f"  bridge (public): {self.api_url}   docs: {self.api_url}/docs",
            f"  bot (internal):  {self.bot_url}",
            f"  token (generated for this run): {self.token}"
            if self.generated
            else "  token: WA_QR_BRIDGE_TOKEN from your environment",
            f'  try: curl -H "Authorization: Bearer $TOKEN" {self.api_url}/admin/wa/qr',
            "",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


class Stack:
    def __init__(self, settings: Settings, bridge_app: object, banner: Banner) -> None:
        self.settings = settings
        self.instance = secrets.token_hex(8)
        self._app = bridge_app
        self._banner = banner
        self._children: list[Child] = []
        self._group = 0
        self._stop = asyncio.Event()
        self._signal: int | None = None
        self._bridge: _Bridge | None = None
        self._bridge_task: asyncio.Task[None] | None = None

    # --- signals --------------------------------------------------------------------------
    def _on_signal(self, sig: int) -> None:
        if self._signal is not None and sig == signal.SIGINT:
            self._kill_group()  # a second Ctrl-C: stop waiting for graceful shutdowns
        self._signal = self._signal or sig
        self._stop.set()
        if self._bridge is not None:
            self._bridge.should_exit = True

    # --- run ------------------------------------------------------------------------------
    async def run(self) -> int:
        s = self.settings
        for name, host, port in (
            ("bot", s.bot_host, s.bot_port),
            ("api", s.api_host, s.api_port),
            ("ui", s.ui_host, s.ui_port),
        ):
            _check_free(name, host, port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            await self._start()
            self._banner.print()
            log_event(log, "stack up", parts=[c.name for c in self._children] + ["bridge"])
            failed = await self._watch()
        except _Stopped:
            failed = None
        except StackFailed as exc:
            failed = str(exc)
        finally:
            await self._shutdown()
        if failed is not None:
            sys.stderr.write(f"waqr: {failed}\n")
            return 1
        return 130 if self._signal == signal.SIGINT else 0

    async def _start(self) -> None:
        s = self.settings
        bot = self._spawn(
            "bot",
            [sys.executable, "-m", "waqr.cli", "bot"],
            {
                "WAQR_BOT_HOST": s.bot_host,
                "WAQR_BOT_PORT": str(s.bot_port),
                "WAQR_BOT_TOKEN": s.bot_token or "",
                "WAQR_INSTANCE_ID": self.instance,
            },
            foreign=False,
        )
        await self._until(bot, self._bot_is_ours)

        self._bridge = _Bridge(_bridge_config(self._app, s))
        self._bridge_task = asyncio.create_task(self._serve_bridge())
        await self._until(None, self._bridge_listens)

        ui = self._spawn(
            "ui",
            streamlit_command(s.ui_host, s.ui_port),
            {
                **ui_environment(s),
                "WA_QR_API_URL": f"{'https' if s.api_tls else 'http'}://127.0.0.1:{s.api_port}",
                "WA_QR_BRIDGE_TOKEN": self._banner.token,
            },
            foreign=True,
            # Orphaned, Streamlit's graceful stop writes to the dead parent's pipe, fails,
            # and hangs. It holds no state: when `waqr up` is killed, so is the UI.
            death_signal=signal.SIGKILL,
        )
        await self._until(ui, self._ui_answers)

    def _spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        foreign: bool,
        death_signal: int = signal.SIGTERM,
    ) -> Child:
        child = Child(
            name, argv, {**os.environ, **env}, self._group, foreign=foreign,
            death_signal=death_signal,
        )  # fmt: skip
        if not self._group:
            self._group = child.pid  # the first child leads the group the others join
        self._children.append(child)
        return child

    async def _serve_bridge(self) -> None:
        assert self._bridge is not None
        try:
            await self._bridge.serve()
        except SystemExit:  # uvicorn exits when it cannot bind
            raise StackFailed(
                f"the bridge could not listen on {self.settings.api_host}:"
                f"{self.settings.api_port} (see its log line above)"
            ) from None

    async def _until(self, child: Child | None, ready: Callable[[], Awaitable[bool]]) -> None:
        name = child.name if child else "bridge"
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if self._stop.is_set():
                raise _Stopped
            if child is not None and child.exited() is not None:
                raise StackFailed(child.failure())
            if self._bridge_task is not None and self._bridge_task.done():
                self._bridge_task.result()  # raises StackFailed when it could not bind
                raise StackFailed("the bridge stopped while the stack was starting")
            if await ready():
                return
            if time.monotonic() > deadline:
                raise StackFailed(
                    f"the {name} did not answer its health check within {START_DEADLINE:.0f} s"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), POLL)

    async def _get(self, url: str, verify: ssl.SSLContext | bool = True) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=2, verify=verify) as client:
                return await client.get(url)
        except httpx.HTTPError:
            return None

    async def _bot_is_ours(self) -> bool:
        s = self.settings
        answer = await self._get(f"{s.bot_url}/health", bot_tls_context(s.bot_ca_file))
        if answer is None or answer.status_code != 200:
            return False
        instance = answer.json().get("instance")
        if instance != self.instance:
            raise StackFailed(
                f"another bot answers on {s.bot_host}:{s.bot_port} (instance {instance}); "
                "stop it first"
            )
        return True

    async def _bridge_listens(self) -> bool:
        return self._bridge is not None and self._bridge.started

    async def _ui_answers(self) -> bool:
        s = self.settings
        answer = await self._get(f"http://{local_address(s.ui_host)}:{s.ui_port}/_stcore/health")
        return answer is not None and answer.status_code == 200

    async def _watch(self) -> str | None:
        """Run until a signal, or until a part dies: then the stack is not whole any more."""
        while not self._stop.is_set():
            for child in self._children:
                if child.exited() is not None:
                    return child.failure()
            if self._bridge_task is not None and self._bridge_task.done():
                if self._bridge_task.exception() is not None:
                    return str(self._bridge_task.exception())
                return None if self._stop.is_set() else "the bridge stopped"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), POLL * 2)
        return None

    # --- stop -----------------------------------------------------------------------------
    async def _shutdown(self) -> None:
        ui = [c for c in self._children if c.name == "ui"]
        for child in ui:
            child.terminate()
        if self._bridge is not None and self._bridge_task is not None:
            self._bridge.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._bridge_task, STOP_GRACE)
        for child in reversed(self._children):
            if child not in ui:
                child.terminate()
        for child in self._children:
            if not await child.wait(STOP_GRACE):
                log_event(log, "child did not stop in time; killing", part=child.name)
        self._kill_group()
        for child in self._children:
            await child.wait(5)

    def _kill_group(self) -> None:
        if self._group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._group, signal.SIGKILL)


def _bridge_config(app: object, settings: Settings) -> uvicorn.Config:
    from waqr.cli import uvicorn_config

    return uvicorn_config(app, settings.api_host, settings.api_port, settings.api_tls)


def run_up(settings: Settings) -> int:
    """The whole system on one command (see the module docstring)."""
    from waqr.bridge.app import create_app

    generated = not settings.token_list
    if generated:
        settings = settings.model_copy(update={"bridge_tokens": secrets.token_urlsafe(32)})
    token = settings.token_list[0]
    if not settings.bot_token:
        # The bot answers only its own bridge, even on loopback (other local users).
        settings = settings.model_copy(update={"bot_token": secrets.token_urlsafe(32)})
    bot_scheme = "https" if settings.bot_tls else "http"
    bot_url = f"{bot_scheme}://{local_address(settings.bot_host)}:{settings.bot_port}"
    settings = settings.model_copy(update={"bot_url": bot_url})
    shown = "localhost" if settings.api_host in ("0.0.0.0", "::") else settings.api_host  # noqa: S104
    api_url = f"{'https' if settings.api_tls else 'http'}://{shown}:{settings.api_port}"
    banner = Banner(
        ui_url=f"http://{settings.ui_host}:{settings.ui_port}",
        api_url=api_url,
        bot_url=bot_url,
        token=token,
        generated=generated,
    )
    try:
        return asyncio.run(Stack(settings, create_app(settings), banner).run())
    except StackFailed as exc:  # raised before the stack could start anything
        sys.stderr.write(f"waqr: {exc}\n")
        return 1
