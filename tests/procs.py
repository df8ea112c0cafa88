"""Real processes and servers for integration tests: free ports, the `waqr bot` process,
and small loopback proxies that misbehave on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            last = predicate()
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


@dataclass
class ServiceProcess:
    """A `waqr <command>` process on a free loopback port, its output in a log file."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    command: str = "bot"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # For a service with a TLS certificate: "https", and what its certificate is checked with.
    scheme: str = "http"
    verify: ssl.SSLContext | bool = True

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> ServiceProcess:
        port_var = {"bot": "WAQR_BOT_PORT", "api": "WAQR_API_PORT"}[self.command]
        env = {
            **os.environ,
            "WAQR_DATA_DIR": str(self.data_dir),
            port_var: str(self.port),
            "WAQR_API_HOST": "127.0.0.1",
            "WAQR_LOG_LEVEL": "DEBUG",
            # Never the internet: a test that does not route the bot elsewhere sends its
            # WhatsApp connection (and the doctor's probes) to a closed loopback port.
            "WA_PROXY": "http://127.0.0.1:9",
            **self.env,
        }
        self.log_path = self.data_dir.parent / f"{self.command}-{self.port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "waqr.cli", self.command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait:
            health = "/health" if self.command == "bot" else "/healthz"
            wait_until(lambda: self.get(health).status_code == 200, 30)
        return self

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, verify=self.verify, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, verify=self.verify, **kw)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = self.get("/status").json()
        return body

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL the whole group after 15 s. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


@contextlib.contextmanager
def running_bot(data_dir: Path, **env: str) -> Iterator[ServiceProcess]:
    bot = ServiceProcess(data_dir, env=env).start()
    try:
        yield bot
    finally:
        bot.stop()


class RedisServer:
    """A real redis-server on a free loopback port, nothing kept on disk."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_until(lambda: _quiet(ready), 10)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _quiet(check: Any) -> Any:
    try:
        return check()
    except OSError:
        return False


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): field 0 is the state."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> set[int]:
    """Every process below ``root`` (zombies included), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with contextlib.suppress(OSError):
        if _stat_fields(pid)[0] == "Z":
            return False
    return True


class MisbehavingProxy:
    """An HTTP proxy on loopback that answers every CONNECT with a fixed reply, or, with
    ``reply=None``, accepts the connection and never answers. Runs in its own thread's loop
    so that synchronous tests can use it."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.port = free_port()
        self.requests: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        self._ready = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        import threading

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.split(b"\r\n", 1)[0])
            if self.reply is None:
                await reader.read()  # hold the line open, say nothing
                return
            writer.write(self.reply)
            await writer.drain()
        writer.close()

    def __enter__(self) -> MisbehavingProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop
        )
        self._server = future.result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            self._server.close()
            for writer in self._writers:
                writer.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
