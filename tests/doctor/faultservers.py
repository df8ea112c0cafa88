"""Local fault servers for the doctor's tests: each produces one real failure on loopback.

TLS servers present a certificate for 127.0.0.1 (an IP SAN), so the probe aims at 127.0.0.1
with no proxy and no name to resolve; proxies use the simulator's server-side negotiation
(``waqr.sim.proxyproto``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve

from waqr.sim import proxyproto

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path  # the CA certificate as PEM, for WAQR_DOCTOR_CA_BUNDLE


def make_authority(directory: Path, name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name.replace(' ', '-')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Authority(cert, key, path)


def server_context(
    directory: Path, authority: Authority, *, valid_from: dt.datetime | None = None
) -> ssl.SSLContext:
    """A TLS server context whose leaf (for 127.0.0.1) ``authority`` signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = valid_from or dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    leaf_path = directory / f"leaf-{leaf.serial_number}.pem"
    key_path = directory / f"leaf-{leaf.serial_number}-key.pem"
    leaf_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf_path, key_path)
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
