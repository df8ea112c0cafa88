"""TCP plumbing for the front door: a listener that can refuse connects, connection tracking, relay.

Python 3.11's stream server logs "Exception in callback" when a connection task is cancelled,
so connections are ended by aborting their sockets (their reads then see EOF) and cancelling
is only the last resort.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

RELAY_CHUNK: Final = 64 * 1024
BACKLOG: Final = 128

StreamCallback = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ReopenableListener:
    """A TCP listener that can be shut (connects get ECONNREFUSED) and reopened on its port.

    Shutting and binding are synchronous, so a fault applies before its setter returns; only the
    asyncio server around a freshly bound socket starts a moment later (connects wait in the
    kernel's backlog meanwhile).
    """

    def __init__(self, host: str, callback: StreamCallback, port: int = 0) -> None:
        self.host = host
        self.port = port  # 0: the first bind picks a free port; later binds reuse it
        self._callback = callback
        self._server: asyncio.Server | None = None
        self._opening: asyncio.Task[None] | None = None
        self._want_open = False

    def want_open(self, wanted: bool) -> None:
        self._want_open = wanted
        if self._opening is not None:
            return  # the opening in flight applies the latest wish when it finishes
        if wanted and self._server is None:
            self._bind()
        elif not wanted and self._server is not None:
            self._server.close()
            self._server = None

    async def settle(self) -> None:
        """Wait until an opening in flight has finished."""
        while self._opening is not None:
            await asyncio.shield(self._opening)

    async def close(self) -> None:
        self._want_open = False
        await self.settle()
        self.want_open(False)

    def _bind(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # Lets the port be bound again while old connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._opening = asyncio.get_running_loop().create_task(self._serve(sock))

    async def _serve(self, sock: socket.socket) -> None:
        try:
            server = await asyncio.start_server(self._callback, sock=sock)
        except BaseException:
            sock.close()
            raise
        finally:
            self._opening = None
        if self._want_open:
            self._server = server
        else:
            server.close()


class Connections:
    """The live connections of a server, so that stopping leaves none behind."""

    def __init__(self) -> None:
        self._live: dict[asyncio.Task[None], asyncio.WriteTransport] = {}

    @contextlib.asynccontextmanager
    async def track(self, transport: asyncio.WriteTransport) -> AsyncIterator[None]:
        """Register the current task and its socket for the duration of the block."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("connections are served in tasks")
        self._live[task] = transport
        try:
            yield
        finally:
            self._live.pop(task, None)

    async def close_all(self, *, grace: float) -> None:
        """Abort every socket, wait for the tasks to notice, cancel the ones that do not."""
        for transport in list(self._live.values()):
            transport.abort()
        tasks = list(self._live)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        await cancel_all(pending)


async def relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    inner_reader: asyncio.StreamReader,
    inner_writer: asyncio.StreamWriter,
) -> None:
    """Copy bytes both ways until either side closes."""
    copies = {
        asyncio.create_task(_copy(reader, inner_writer)),
        asyncio.create_task(_copy(inner_reader, writer)),
    }
    try:
        await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_all(copies)


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await source.read(RELAY_CHUNK):
            sink.write(chunk)
            await sink.drain()


async def cancel_all(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel the tasks (never the caller) and wait for them to finish."""
    pending = [task for task in tasks if task is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
