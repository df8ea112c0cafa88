"""Client-side helpers for the front door tests: a real proxy, TLS and websocket client.

Also runnable as a script (``python _frontdoor_helpers.py STORE PROXY_URL``): the engine probe,
which starts the real neonize client in its own process (neonize's Go side can abort the
process hosting it, so it never runs inside pytest) and prints one JSON line describing how its
connect task ended.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect

from waqr.sim.frontdoor import FrameConn, FrameConnClosed

INTRO = bytes([0x57, 0x41, 0x06, 0x03])
WS_URL = "wss://web.whatsapp.com/ws/chat"
ORIGIN = "https://web.whatsapp.com"
STEP = 10.0  # bound on any single network step in these tests


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + payload


class ProxyRefusedError(Exception):
    """The proxy answered the tunnel request with something other than success."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


async def open_tunnel(proxy_url: str, target: str = "web.whatsapp.com:443") -> socket.socket:
    """A socket tunnelled through the proxy (``http://`` CONNECT or ``socks5://``)."""
    url = urlsplit(proxy_url)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(STEP):
            await loop.sock_connect(sock, (url.hostname, url.port))
            if url.scheme == "http":
                await _http_connect(sock, target, url.username, url.password)
            else:
                await _socks5_connect(sock, target, url.username, url.password)
    except BaseException:
        sock.close()
        raise
    return sock


async def _http_connect(
    sock: socket.socket, target: str, user: str | None, password: str | None
) -> None:
    loop = asyncio.get_running_loop()
    auth = ""
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        auth = f"Proxy-Authorization: Basic {token}\r\n"
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n"
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:  # read byte by byte: nothing after the head is ours
        byte = await loop.sock_recv(sock, 1)
        if not byte:
            raise ProxyRefusedError("proxy closed without an answer")
        head += byte
    status_line = head.split(b"\r\n", 1)[0].decode()
    if status_line.split(" ")[1] != "200":
        raise ProxyRefusedError(status_line)


async def _socks5_connect(
    sock: socket.socket, target: str, user: str | None, password: str | None
) -> None:
    loop = asyncio.get_running_loop()

    async def read(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = await loop.sock_recv(sock, size - len(data))
            if not chunk:
                raise ProxyRefusedError("SOCKS5 proxy closed the connection")
            data += chunk
        return data

    method = 0x02 if user is not None else 0x00
    await loop.sock_sendall(sock, bytes([5, 1, method]))
    version, chosen = await read(2)
    if chosen != method:
        raise ProxyRefusedError(f"SOCKS5 method {chosen:#x}")
    if method == 0x02:
        assert user is not None and password is not None
        await loop.sock_sendall(
            sock, bytes([1, len(user)]) + user.encode() + bytes([len(password)]) + password.encode()
        )
        if (await read(2))[1] != 0:
            raise ProxyRefusedError("SOCKS5 authentication failed")
    host, _, port = target.rpartition(":")
    request = bytes([5, 1, 0, 3, len(host)]) + host.encode() + int(port).to_bytes(2, "big")
    await loop.sock_sendall(sock, request)
    reply = await read(10)
    if reply[1] != 0:
        raise ProxyRefusedError(f"SOCKS5 reply {reply[1]}")


def client_tls_context(ca_file: Path) -> ssl.SSLContext:
    """What the engine does: verify the chain and the name against the CA in SSL_CERT_FILE."""
    return ssl.create_default_context(cafile=str(ca_file))


@contextlib.asynccontextmanager
async def websocket(
    proxy_url: str,
    ca_file: Path,
    *,
    path: str = "/ws/chat",
    origin: str = ORIGIN,
    open_timeout: float = STEP,
) -> AsyncIterator[ClientConnection]:
    """A wss connection to web.whatsapp.com through the proxy, as the engine opens it."""
    sock = await open_tunnel(proxy_url)
    try:
        ws = await connect(
            f"wss://web.whatsapp.com{path}",
            sock=sock,
            ssl=client_tls_context(ca_file),
            server_hostname="web.whatsapp.com",
            origin=origin,  # type: ignore[arg-type]
            open_timeout=open_timeout,
            compression=None,
        )
    except BaseException:
        sock.close()
        raise
    try:
        yield ws
    finally:
        await ws.close()


@dataclass
class RecordingHandler:
    """A frame handler that records what it got and echoes every frame back."""

    prologues: list[bytes] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    received: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)

    async def __call__(self, conn: FrameConn) -> None:
        self.prologues.append(conn.prologue)
        try:
            while True:
                payload = await conn.recv()
                self.frames.append(payload)
                self.received.put_nowait(payload)
                await conn.send(payload)
        except FrameConnClosed:
            self.closed.append("closed")

    async def next_frame(self) -> bytes:
        async with asyncio.timeout(STEP):
            return await self.received.get()


# -- the engine probe (runs in a child process) ----------------------------------------------


def _emit(fd: int, **fields: object) -> None:
    os.write(fd, (json.dumps(fields) + "\n").encode())


async def _probe(store: str, proxy: str, fd: int) -> None:
    from neonize._binder import ProxySettings
    from neonize.aioze.client import NewAClient

    client = NewAClient(store)
    task = await client.connect(ProxySettings(proxy_address=proxy))
    _emit(fd, event="connecting")
    try:
        await task
    except Exception as exc:  # neonize raises its own NeonizeError with Go's message
        _emit(fd, event="connect_failed", error=str(exc), type=type(exc).__name__)
    else:
        _emit(fd, event="connect_returned")


def _probe_main() -> None:
    event_fd = os.dup(1)
    os.dup2(2, 1)  # the Go side prints to fd 1; keep the JSON lines on their own fd
    try:
        asyncio.run(_probe(sys.argv[1], sys.argv[2], event_fd))
    finally:
        os._exit(0)  # neonize's Go worker thread is not a daemon; do not join it


if __name__ == "__main__":
    _probe_main()
