"""Server side of the two proxy protocols the engine can use: HTTP CONNECT and SOCKS5.

Only the negotiation lives here (no I/O policy, no faults): reading a CONNECT request head,
checking Basic proxy credentials, and the SOCKS5 greeting / RFC 1929 user-password
sub-negotiation / request (RFC 1928). Go's ``net/http`` sends ``CONNECT host:443`` with
``Proxy-Authorization: Basic`` when the proxy URL carries user:pass; ``golang.org/x/net/proxy``
speaks SOCKS5 with method 0x02 when given credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MAX_HEAD: Final = 16 * 1024
SOCKS_VERSION: Final = 5
NO_AUTH: Final = 0x00
USER_PASSWORD: Final = 0x02
NO_ACCEPTABLE_METHOD: Final = 0xFF
SOCKS_SUCCEEDED: Final = 0x00
SOCKS_NOT_ALLOWED: Final = 0x02  # "connection not allowed by ruleset"
SOCKS_COMMAND_NOT_SUPPORTED: Final = 0x07
SOCKS_ADDRESS_NOT_SUPPORTED: Final = 0x08
HTTP_ESTABLISHED: Final = b"HTTP/1.1 200 Connection established\r\n\r\n"

Credentials = tuple[str, str]


class ProxyProtocolError(Exception):
    """The client spoke neither protocol properly; drop the connection."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str  # for CONNECT: host:port
    headers: dict[str, str]  # names lower-cased


async def read_http_request(reader: asyncio.StreamReader) -> HttpRequest:
    """Read and parse one request head (request line and headers)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise ProxyProtocolError("request head too long") from exc
    if len(head) > MAX_HEAD:
        raise ProxyProtocolError("request head too long")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ProxyProtocolError("not an HTTP/1.x request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return HttpRequest(parts[0], parts[1], headers)


def http_answer(status: str, extra_headers: str = "") -> bytes:
    """A complete, empty-bodied response that ends the connection."""
    head = f"HTTP/1.1 {status}\r\n{extra_headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    return head.encode()


def basic_credentials(header: str) -> Credentials | None:
    """(user, password) from a ``Proxy-Authorization: Basic ...`` value, if well formed."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def credentials_match(expected: Credentials | None, given: Credentials | None) -> bool:
    """Constant-time comparison; no expected credentials means anyone may use the proxy."""
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest("\0".join(expected).encode(), "\0".join(given).encode())


async def socks5_negotiate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    credentials: Credentials | None,
    check: Callable[[Credentials], bool],
) -> str | None:
    """Greeting, authentication and request; the CONNECT target, or None once refused.

    With ``credentials`` set only user/password is offered; without, no-auth is preferred and a
    client that insists on user/password is let in whatever it sends.
    """
    version, count = await reader.readexactly(2)
    methods = await reader.readexactly(count)
    if version != SOCKS_VERSION:
        raise ProxyProtocolError(f"SOCKS version {version}")
    if credentials is None and NO_AUTH in methods:
        method = NO_AUTH
    elif USER_PASSWORD in methods:
        method = USER_PASSWORD
    else:
        method = NO_ACCEPTABLE_METHOD
    writer.write(bytes([SOCKS_VERSION, method]))
    if method == NO_ACCEPTABLE_METHOD:
        return None
    if method == USER_PASSWORD:
        _, user_size = await reader.readexactly(2)  # sub-negotiation version 1
        user = await reader.readexactly(user_size)
        (password_size,) = await reader.readexactly(1)
        password = await reader.readexactly(password_size)
        accepted = check((user.decode(errors="replace"), password.decode(errors="replace")))
        writer.write(bytes([1, 0 if accepted else 1]))
        if not accepted:
            return None
    _, command, _, address_type = await reader.readexactly(4)
    if address_type == 0x01:
        host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
    elif address_type == 0x04:
        host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
    elif address_type == 0x03:
        (size,) = await reader.readexactly(1)
        host = (await reader.readexactly(size)).decode(errors="replace")
    else:
        writer.write(socks5_reply(SOCKS_ADDRESS_NOT_SUPPORTED))
        return None
    port = int.from_bytes(await reader.readexactly(2), "big")
    if command != 0x01:  # only CONNECT; BIND and UDP ASSOCIATE are not offered
        writer.write(socks5_reply(SOCKS_COMMAND_NOT_SUPPORTED))
        return None
    return f"{host}:{port}"


def socks5_reply(code: int) -> bytes:
    # VER, REP, RSV, ATYP=IPv4, BND.ADDR 0.0.0.0, BND.PORT 0: clients ignore the bound address.
    return bytes([SOCKS_VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0])
