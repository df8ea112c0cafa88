"""The two top network layers over the TLS streams: the WebSocket upgrade at /ws/chat and the
Noise hello. The WebSocket is ``websockets``' sans-I/O ``ClientProtocol`` driven over the
doctor's own streams, so TLS (below) and Noise (above) stay separate, timed steps.

Noise: send the intro header and a ClientHello, read ServerHello, decrypt the server's static
key and certificate chain as the client does (``waqr.waproto``), and check the chain against
the configured root. No ClientFinish is sent: nothing logs in.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Origin
from websockets.uri import parse_uri

from waqr.doctor.target import WS_ORIGIN, WS_PATH, ProbeTarget
from waqr.doctor.tlslayer import TlsStreams
from waqr.doctor.verdict import LayerFailed
from waqr.waproto import proto
from waqr.waproto.certchain import CertChainError, verify_cert_chain
from waqr.waproto.noise import INTRO_HEADER, SymmetricState, dh

READ_CHUNK: Final = 65536
LENGTH_SIZE: Final = 3  # each frame: 3-byte big-endian length, then the payload (doc §2)
FIX_MOVE: Final = "run the bot on another host (a residential or business connection)"
FIX_PROXY: Final = "set WA_PROXY to a proxy on a network WhatsApp accepts"


class ChatSocket:
    """The WebSocket over the TLS streams, read and written through the sans-I/O protocol."""

    def __init__(self, streams: TlsStreams, target: ProbeTarget) -> None:
        self.streams = streams
        self.protocol = ClientProtocol(
            parse_uri(f"wss://{target.host}{WS_PATH}"), origin=Origin(WS_ORIGIN), max_size=None
        )

    async def flush(self) -> None:
        self.streams.writer.write(b"".join(self.protocol.data_to_send()))
        await self.streams.writer.drain()

    async def events(self) -> list[Any]:
        """The next events; [] once the stream has ended."""
        while True:
            data = await self.streams.reader.read(READ_CHUNK)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            events = self.protocol.events_received()
            await self.flush()  # pongs and close replies
            if events or not data:
                return events

    def close(self) -> None:
        self.streams.writer.close()


async def upgrade(streams: TlsStreams, target: ProbeTarget) -> ChatSocket:
    chat = ChatSocket(streams, target)
    request = chat.protocol.connect()
    chat.protocol.send_request(request)
    try:
        async with asyncio.timeout(target.step_timeout):
            await chat.flush()
            response: Response | None = None
            while response is None:
                events = await chat.events()
                if not events:
                    break
                response = next((e for e in events if isinstance(e, Response)), None)
    except TimeoutError as exc:
        raise LayerFailed(
            "websocket_no_answer",
            f"no answer to the WebSocket upgrade at {WS_PATH} within {target.step_timeout:g} s",
            "check the proxy or firewall: something answers TLS but not HTTP",
        ) from exc
    except ConnectionError as exc:
        raise _ws_closed(str(exc)) from exc
    if response is None:
        raise _ws_closed("the connection closed before an answer")
    failure = chat.protocol.handshake_exc
    if failure is not None:
        status = response.status_code
        detail = (
            f"the WebSocket upgrade at {WS_PATH} was answered {status} {response.reason_phrase}"
        )
        if isinstance(failure, InvalidStatus) and status == 403:
            raise LayerFailed(
                "websocket_forbidden",
                detail + ": the server (or a filter in front of it) refuses this client",
                FIX_PROXY,
                FIX_MOVE,
            )
        raise LayerFailed(
            "websocket_rejected",
            detail,
            "check the proxy or firewall between this host and WhatsApp",
        )
    return chat


def _ws_closed(what: str) -> LayerFailed:
    return LayerFailed(
        "websocket_closed",
        f"the WebSocket upgrade at {WS_PATH} failed: {what}",
        "check the proxy or firewall between this host and WhatsApp",
    )


async def noise_hello(chat: ChatSocket, target: ProbeTarget) -> str:
    """Send ClientHello, check ServerHello and its certificate chain; what was seen."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    hello = proto.HandshakeMessage()
    hello.clientHello.ephemeral = ephemeral_public
    payload = bytes(hello.SerializeToString())
    chat.protocol.send_binary(INTRO_HEADER + len(payload).to_bytes(LENGTH_SIZE, "big") + payload)
    await chat.flush()
    frame = await _first_frame(chat, target)
    state = SymmetricState(INTRO_HEADER)
    try:
        reply = proto.HandshakeMessage()
        reply.ParseFromString(frame)
        server_ephemeral = bytes(reply.serverHello.ephemeral)
        state.mix_hash(ephemeral_public)
        state.mix_hash(server_ephemeral)
        state.mix_key(dh(ephemeral, server_ephemeral))
        server_static = state.decrypt(bytes(reply.serverHello.static))
        state.mix_key(dh(ephemeral, server_static))
        chain = state.decrypt(bytes(reply.serverHello.payload))
    # NoiseError, ValueError (a bad key), or protobuf's DecodeError (not exported in stubs).
    except Exception as exc:
        raise LayerFailed(
            "noise_bad_server_hello",
            f"the answer to ClientHello is not a valid ServerHello: {exc}",
            "check the proxy or firewall: something answers in WhatsApp's place",
        ) from exc
    try:
        verify_cert_chain(
            chain, root_key=target.root_key, server_static=server_static, now=int(time.time())
        )
    except CertChainError as exc:
        raise LayerFailed(
            "noise_untrusted_certificate",
            f"the server's Noise certificate chain does not lead to the trusted root key ({exc}): "
            "something is impersonating WhatsApp",
            "check the proxy or firewall: the connection does not reach WhatsApp",
            "check WAQR_DOCTOR_ROOT_KEY (leave it unset for WhatsApp's own)",
        ) from exc
    return "ServerHello received; its certificate chain leads to the trusted root"


async def _first_frame(chat: ChatSocket, target: ProbeTarget) -> bytes:
    buffer = b""
    try:
        async with asyncio.timeout(target.noise_timeout):
            while True:
                events = await chat.events()
                if not events:
                    raise _refused("the server closed the connection right after ClientHello")
                for event in events:
                    if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                        raise _refused("the server closed the WebSocket right after ClientHello")
                    if isinstance(event, Frame) and event.opcode is Opcode.BINARY:
                        buffer += bytes(event.data)
                if len(buffer) >= LENGTH_SIZE:
                    size = int.from_bytes(buffer[:LENGTH_SIZE], "big")
                    if len(buffer) >= LENGTH_SIZE + size:
                        return buffer[LENGTH_SIZE : LENGTH_SIZE + size]
    except ConnectionError as exc:
        raise _refused(f"the connection was reset right after ClientHello ({exc})") from exc
    except TimeoutError as exc:
        raise LayerFailed(
            "noise_silent",
            f"no ServerHello within {target.noise_timeout:g} s after ClientHello: a firewall "
            "or middlebox holds the connection without passing WhatsApp's answer",
            "check the firewall or proxy (deep packet inspection that stalls WhatsApp)",
            FIX_PROXY,
        ) from exc


def _refused(what: str) -> LayerFailed:
    return LayerFailed(
        "noise_refused",
        f"{what}, with every layer below healthy: this is how WhatsApp refuses an IP range it "
        "blocks (cloud and VPS ranges often are)",
        FIX_PROXY,
        FIX_MOVE,
    )
