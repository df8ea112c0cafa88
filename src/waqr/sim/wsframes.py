"""WhatsApp frames over a websocket: the ``FrameConn`` the protocol server reads and writes.

Each frame is a 3-byte big-endian length and a payload shorter than 2^24 bytes; the client sends
one frame per websocket message, but a reader must not rely on that: frames may be packed into
or split across messages (whatsmeow ``socket/framesocket.go``, doc §2). The client's first
message begins with the 4-byte intro header, which the front door strips off as the prologue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

INTRO_SIZE: Final = 4  # "WA", magic 6, dictionary version 3 (doc §2)
LENGTH_SIZE: Final = 3
MAX_FRAME: Final = 1 << 24  # payloads must be shorter (whatsmeow FrameMaxSize)
MAX_MESSAGE: Final = MAX_FRAME + INTRO_SIZE + LENGTH_SIZE


class FrameConnClosed(Exception):
    """The connection is gone (or its framing broke); no more frames either way."""


class FrameConn(Protocol):
    """One client connection as a channel of frame payloads."""

    prologue: bytes  # the 4-byte intro header the client sent

    async def recv(self) -> bytes: ...

    async def send(self, payload: bytes) -> None: ...

    async def close(self) -> None:
        """End the connection politely: a WebSocket close frame, then the close handshake."""
        ...

    async def hang_up(self) -> None:
        """End it the way WhatsApp's server does: what was sent is delivered, then the stream
        ends with no WebSocket close frame (whatsmeow #1013: the client's own close then fails
        with "failed to read frame header: EOF")."""
        ...


FrameHandler = Callable[[FrameConn], Awaitable[None]]


class WebSocketFrameConn:
    """``FrameConn`` over a websocket: length prefixes added and stripped, frames reassembled."""

    def __init__(self, ws: ServerConnection, prologue: bytes, buffered: bytes) -> None:
        self.prologue = prologue
        self._ws = ws
        self._buffer = bytearray(buffered)

    async def recv(self) -> bytes:
        while True:
            if len(self._buffer) >= LENGTH_SIZE:
                size = int.from_bytes(self._buffer[:LENGTH_SIZE], "big")
                end = LENGTH_SIZE + size
                if len(self._buffer) >= end:
                    payload = bytes(self._buffer[LENGTH_SIZE:end])
                    del self._buffer[:end]
                    return payload
            self._buffer += await next_binary(self._ws)

    async def send(self, payload: bytes) -> None:
        if len(payload) >= MAX_FRAME:
            raise ValueError(f"frame of {len(payload)} bytes does not fit a 3-byte length")
        try:
            await self._ws.send(len(payload).to_bytes(LENGTH_SIZE, "big") + payload)
        except ConnectionClosed as exc:
            raise FrameConnClosed from exc

    async def close(self) -> None:
        await self._ws.close()

    async def hang_up(self) -> None:
        # Closing the transport flushes it, sends TLS close_notify and FIN; no WebSocket frame.
        # The reader then sees ConnectionClosed once the client closes its side too.
        self._ws.transport.close()


async def next_binary(ws: ServerConnection) -> bytes:
    """The next binary message; text messages are skipped, as the client does (doc §2)."""
    while True:
        try:
            message = await ws.recv()
        except ConnectionClosed as exc:
            raise FrameConnClosed from exc
        if isinstance(message, bytes):
            return message
