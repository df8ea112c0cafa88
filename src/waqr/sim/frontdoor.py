"""The simulator's network front door: proxy -> TLS -> WebSocket -> WhatsApp frames.

The engine keeps dialling ``wss://web.whatsapp.com/ws/chat``; it reaches us because it is told to
use a proxy (doc §2). Path of one connection:

    client --CONNECT web.whatsapp.com:443--> HTTP proxy  (or SOCKS5 CONNECT)
           --raw bytes, relayed over loopback--> TLS websocket server (leaf for web.whatsapp.com)
           --GET /ws/chat, Origin https://web.whatsapp.com--> FrameConn -> handler

Every CONNECT target is tunnelled into the simulator: the only sockets ever dialled are our own
loopback listeners. TLS ends in one of two internal websocket servers, picked per tunnel: the one
whose leaf chains to ``ca_cert_path``, or (fault UNTRUSTED_TLS) one signed by a stranger CA.

The first websocket message starts with the 4-byte intro header (kept as ``FrameConn.prologue``);
after it, each frame is a 3-byte big-endian length and a payload, and frames may be split across
or packed into websocket messages (doc §2, ``wsframes.py``).

``FrontDoor.fault`` makes the door misbehave the way real networks do (``FrontDoorFault``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from waqr.sim import proxyproto, tls
from waqr.sim.listener import RELAY_CHUNK, Connections, ReopenableListener, relay
from waqr.sim.proxyproto import Credentials, ProxyProtocolError
from waqr.sim.wsframes import (
    INTRO_SIZE,
    MAX_MESSAGE,
    FrameConn,
    FrameConnClosed,
    FrameHandler,
    WebSocketFrameConn,
    next_binary,
)

__all__ = ["FrameConn", "FrameConnClosed", "FrameHandler", "FrontDoor", "FrontDoorFault"]

log = logging.getLogger("waqr.sim.frontdoor")

LOOPBACK: Final = "127.0.0.1"
WS_PATH: Final = "/ws/chat"
WS_ORIGIN: Final = "https://web.whatsapp.com"
NEGOTIATION_TIMEOUT: Final = 30.0  # for a proxy request or a SOCKS5 negotiation
INTRO_TIMEOUT: Final = 20.0  # the client sends its hello at once; it waits 20 s for ours (§3.3)
STOP_TIMEOUT: Final = 5.0
TLS_RECORD_HEADER: Final = 5


class FrontDoorFault(enum.StrEnum):
    """How the door misbehaves, each the way a real network or middlebox does."""

    NONE = "none"
    REFUSE_TCP = "refuse_tcp"  # proxy listeners closed: connects get ECONNREFUSED
    CLOSE_AFTER_CONNECT = "close_after_connect"  # "200" to CONNECT, then the tunnel closes
    UNTRUSTED_TLS = "untrusted_tls"  # a leaf from a CA the client does not trust (interceptor)
    WS_FORBIDDEN = "ws_forbidden"  # the WebSocket upgrade is answered 403
    SILENT_AFTER_CLIENT_HELLO = "silent_after_client_hello"  # TLS ClientHello read, never answered
    PROXY_FORBIDDEN = "proxy_forbidden"  # CONNECT answered 403 (SOCKS5: "not allowed by ruleset")


class FrontDoor:
    """HTTP CONNECT and SOCKS5 proxies that lead every tunnel into the simulator's websocket."""

    def __init__(
        self,
        handler: FrameHandler,
        *,
        host: str = LOOPBACK,
        state_dir: Path,
        proxy_auth: Credentials | None = None,
        proxy_port: int = 0,
        socks_port: int = 0,
    ) -> None:
        self.handler = handler
        self.host = host
        self.proxy_auth = proxy_auth  # (user, password) both proxies demand; None = open
        self.tls = tls.load_or_create(state_dir / "tls")
        self.ca_cert_path: Path = self.tls.ca_cert_path
        self._fault = FrontDoorFault.NONE
        self._http = ReopenableListener(host, self._serve_http_proxy, proxy_port)
        self._socks = ReopenableListener(host, self._serve_socks_proxy, socks_port)
        self._websockets: dict[bool, Server] = {}  # trusted? -> internal TLS websocket server
        self._proxy_connections = Connections()
        self._ws_connections = Connections()
        self._running = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        for trusted, authority in ((True, self.tls.trusted), (False, self.tls.untrusted)):
            self._websockets[trusted] = await serve(
                self._serve_websocket,
                LOOPBACK,
                0,
                ssl=authority.server_context(),
                process_request=self._check_upgrade,
                max_size=MAX_MESSAGE,
                compression=None,  # the client offers permessage-deflate; declining is allowed
                ping_interval=None,  # liveness is the protocol's own w:p ping (doc §8)
                server_header=None,
            )
        self._running = True
        for listener in (self._http, self._socks):
            listener.want_open(True)  # bound even under REFUSE_TCP, so the ports are known
        await self._settle()
        self._apply_fault()
        log.info("front door: HTTP proxy %s, SOCKS5 proxy %s", self.proxy_url, self.socks_url)

    async def stop(self) -> None:
        """Close the listeners and every connection; no task or socket outlives this."""
        self._running = False
        await self._http.close()
        await self._socks.close()
        await self._proxy_connections.close_all(grace=STOP_TIMEOUT)  # relays end with them
        servers = list(self._websockets.values())
        self._websockets.clear()
        for server in servers:
            server.close()  # closes the websockets; handlers then see FrameConnClosed
        for server in servers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await server.wait_closed()
        await self._ws_connections.close_all(grace=STOP_TIMEOUT)  # handlers that ignored the close
        for server in servers:
            await server.wait_closed()

    @property
    def proxy_url(self) -> str:
        return _url("http", self.host, self._http.port)

    @property
    def socks_url(self) -> str:
        return _url("socks5", self.host, self._socks.port)

    # -- faults ----------------------------------------------------------------------------

    @property
    def fault(self) -> FrontDoorFault:
        return self._fault

    @fault.setter
    def fault(self, fault: FrontDoorFault) -> None:
        """Applies to the next connection; REFUSE_TCP shuts (and clearing it rebinds) at once.

        Set it from the event loop's thread (reopening schedules work on the running loop).
        """
        self._fault = FrontDoorFault(fault)
        self._apply_fault()

    async def set_fault(self, fault: FrontDoorFault) -> None:
        """Assign ``fault`` and wait until reopened listeners are serving again."""
        self.fault = fault
        await self._settle()

    def _apply_fault(self) -> None:
        if self._running:
            listening = self._fault is not FrontDoorFault.REFUSE_TCP
            self._http.want_open(listening)
            self._socks.want_open(listening)

    async def _settle(self) -> None:
        await self._http.settle()
        await self._socks.settle()

    # -- the two proxies -------------------------------------------------------------------

    async def _serve_http_proxy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._serve_proxy(reader, writer, self._negotiate_http)

    async def _serve_socks_proxy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._serve_proxy(reader, writer, self._negotiate_socks)

    async def _serve_proxy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, negotiate: _Negotiation
    ) -> None:
        async with self._proxy_connections.track(writer.transport):
            try:
                async with asyncio.timeout(NEGOTIATION_TIMEOUT):
                    fault = await negotiate(reader, writer)
                if fault is not None:
                    await self._tunnel(reader, writer, fault)
            except _CLIENT_GONE:
                pass
            finally:
                await _close(writer)

    async def _negotiate_http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> FrontDoorFault | None:
        """Answer the CONNECT; the fault the tunnel then runs under, or None when refused."""
        request = await proxyproto.read_http_request(reader)
        fault = self._fault
        refusal = self._http_refusal(request, fault)
        writer.write(refusal or proxyproto.HTTP_ESTABLISHED)
        await writer.drain()
        if refusal is not None:
            return None
        log.debug("CONNECT %s: tunnelled into the simulator", request.target)
        return fault

    def _http_refusal(self, request: proxyproto.HttpRequest, fault: FrontDoorFault) -> bytes | None:
        if request.method != "CONNECT":
            return proxyproto.http_answer("405 Method Not Allowed", "Allow: CONNECT\r\n")
        given = proxyproto.basic_credentials(request.headers.get("proxy-authorization", ""))
        if not proxyproto.credentials_match(self.proxy_auth, given):
            challenge = 'Proxy-Authenticate: Basic realm="waqr-sim"\r\n'
            return proxyproto.http_answer("407 Proxy Authentication Required", challenge)
        if fault is FrontDoorFault.PROXY_FORBIDDEN:
            return proxyproto.http_answer("403 Forbidden")
        return None

    async def _negotiate_socks(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> FrontDoorFault | None:
        """SOCKS5 negotiation; the fault the tunnel then runs under, or None when refused."""
        target = await proxyproto.socks5_negotiate(
            reader,
            writer,
            credentials=self.proxy_auth,
            check=lambda given: proxyproto.credentials_match(self.proxy_auth, given),
        )
        fault = self._fault
        if target is not None and fault is FrontDoorFault.PROXY_FORBIDDEN:
            writer.write(proxyproto.socks5_reply(proxyproto.SOCKS_NOT_ALLOWED))
            target = None
        elif target is not None:
            writer.write(proxyproto.socks5_reply(proxyproto.SOCKS_SUCCEEDED))
            log.debug("SOCKS5 CONNECT %s: tunnelled into the simulator", target)
        await writer.drain()  # the success, or whatever refusal the negotiation wrote
        return None if target is None else fault

    # -- the tunnel ------------------------------------------------------------------------

    async def _tunnel(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: FrontDoorFault
    ) -> None:
        if fault is FrontDoorFault.CLOSE_AFTER_CONNECT:
            # Half-close, then wait for the client to hang up: it sees a clean EOF where it
            # expected a ServerHello (closing outright would answer its ClientHello with RST).
            writer.write_eof()
            async with asyncio.timeout(NEGOTIATION_TIMEOUT):
                await _drain_until_eof(reader)
            return
        if fault is FrontDoorFault.SILENT_AFTER_CLIENT_HELLO:
            header = await reader.readexactly(TLS_RECORD_HEADER)
            await reader.readexactly(int.from_bytes(header[3:5], "big"))
            await _drain_until_eof(reader)  # hold the socket until the client gives up
            return
        server = self._websockets[fault is not FrontDoorFault.UNTRUSTED_TLS]
        port = server.sockets[0].getsockname()[1]
        inner_reader, inner_writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            await relay(reader, writer, inner_reader, inner_writer)
        finally:
            await _close(inner_writer)

    # -- websocket -------------------------------------------------------------------------

    def _check_upgrade(self, ws: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != WS_PATH:
            return ws.respond(404, "Not Found\n")
        if self._fault is FrontDoorFault.WS_FORBIDDEN:
            return ws.respond(403, "Forbidden\n")
        if request.headers.get("Origin") != WS_ORIGIN:
            return ws.respond(403, "Origin not allowed\n")
        return None

    async def _serve_websocket(self, ws: ServerConnection) -> None:
        async with self._ws_connections.track(ws.transport):
            try:
                buffered = b""
                async with asyncio.timeout(INTRO_TIMEOUT):
                    while len(buffered) < INTRO_SIZE:
                        buffered += await next_binary(ws)
                conn = WebSocketFrameConn(ws, buffered[:INTRO_SIZE], buffered[INTRO_SIZE:])
                await self.handler(conn)
            except (TimeoutError, FrameConnClosed):
                pass
            except Exception:
                log.exception("frame handler failed")
            finally:
                await ws.close()


_Negotiation = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[FrontDoorFault | None]
]
_CLIENT_GONE: Final = (
    ConnectionError,
    TimeoutError,
    asyncio.IncompleteReadError,
    ProxyProtocolError,
)


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(RELAY_CHUNK):
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _url(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
