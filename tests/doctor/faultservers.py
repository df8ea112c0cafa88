"""Local fault servers for the doctor's tests: each produces one real failure on loopback.

TLS servers present a certificate for 127.0.0.1 (an IP SAN), so the probe aims at 127.0.0.1
with no proxy and no name to resolve; proxies use the simulator's server-side negotiation
(``waqr.sim.proxyproto``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from tests.pki import LOOPBACK, Authority, issue_server_cert
from waqr.sim import proxyproto


def server_context(
    directory: Path, authority: Authority, *, valid_from: dt.datetime | None = None
) -> ssl.SSLContext:
    """A TLS server context whose leaf (for 127.0.0.1) ``authority`` signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*issue_server_cert(directory, authority, valid_from=valid_from))
    return context


@contextlib.asynccontextmanager
async def websocket_server(
    context: ssl.SSLContext, behaviour: str = "close_after_hello"
) -> AsyncIterator[int]:
    """A TLS WebSocket server on loopback; its port. ``behaviour`` after the first message:
    ``close_after_hello`` ends the TCP stream (no close frame), ``silent`` never answers."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        if behaviour == "close_after_hello":
            ws.transport.close()
            return
        await ws.wait_closed()

    async with serve(handler, LOOPBACK, 0, ssl=context) as server:
        yield server.sockets[0].getsockname()[1]
        server.close()


@contextlib.asynccontextmanager
async def http_proxy(answer: bytes) -> AsyncIterator[int]:
    """An HTTP proxy that reads one CONNECT and answers ``answer``; its port."""

    async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await proxyproto.read_http_request(reader)
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve_one, LOOPBACK, 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def socks_proxy(*, credentials: tuple[str, str] | None) -> AsyncIterator[int]:
    """A SOCKS5 proxy whose rules allow nothing (reply 0x02), or that wants ``credentials``."""

    async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            target = await proxyproto.socks5_negotiate(
                reader,
                writer,
                credentials=credentials,
                check=lambda given: proxyproto.credentials_match(credentials, given),
            )
            if target is not None:
                writer.write(proxyproto.socks5_reply(proxyproto.SOCKS_NOT_ALLOWED))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve_one, LOOPBACK, 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def full_backlog_listener() -> Iterator[int]:
    """A listener that never accepts, its accept queue filled: the kernel then drops further
    SYNs, so a new connection gets no answer at all (what a dropping firewall looks like)."""
    listener = socket.socket()
    held: list[socket.socket] = []
    try:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        for _ in range(16):
            client = socket.socket()
            client.settimeout(1.0)
            try:
                client.connect((LOOPBACK, port))
            except TimeoutError:
                client.close()
                break
            held.append(client)
        else:
            raise RuntimeError("the accept queue never filled")
        yield port
    finally:
        for client in held:
            client.close()
        listener.close()
