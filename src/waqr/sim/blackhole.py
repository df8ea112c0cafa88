"""A black hole: the connection stays open and the server goes silent.

This is how a NAT mapping that timed out, a dying middlebox or a half-open socket looks to the
client: its frames go out and nothing comes back, not even a close. whatsmeow notices only
through its keepalive (a ``w:p`` ping every 20-30 s, 10 s deadline: KeepAliveTimeout, and
KeepAliveRestored once a ping is answered again).

While a connection's hole is open its ``Session`` reads every client frame and drops it, and
drops every node it would send (iq results, stream errors, notifications), so the client sees
no back-pressure and no answer. Closing the socket is not a node: a server-side close (a logout,
a newer login replacing this one, ``drop_linked_sessions``) still reaches the client. The hole
ends after ``seconds`` with ``then``:

    recover  answering resumes on the same connection; iqs that came during the hole stay
             unanswered, as their frames never reached a server
    close    the socket is dropped with no close frame (``FrameConn.hang_up``)

``seconds=None`` keeps it open until the control API lifts it (``{"black_hole": null}`` or
``clear``), which resumes answering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal, Protocol

from waqr.sim.chaos import Sleep

log = logging.getLogger("waqr.sim.blackhole")

HoleEnd = Literal["recover", "close"]


@dataclass(frozen=True)
class BlackHoleSettings:
    """What ``POST /faults {"black_hole": {...}}`` asks for (bounds are checked by the API)."""

    seconds: float | None  # how long the hole lasts; None: until lifted
    then: HoleEnd = "recover"
    after_login: float = 0.0  # seconds after <success> before a new login's hole opens


class HoleHost(Protocol):
    """What a hole needs of its connection (``server.Session``)."""

    conn_id: int

    def spawn(self, work: Awaitable[None], name: str) -> asyncio.Task[None]: ...

    async def close(self, *, hang_up: bool = False) -> None: ...


class BlackHole:
    """One connection's black hole: closed until opened, then silent until it ends."""

    def __init__(self, host: HoleHost, *, sleep: Sleep = asyncio.sleep) -> None:
        self._host = host
        self._sleep = sleep  # the world's clock: tests pass one they advance by hand
        self._timer: asyncio.Task[None] | None = None
        self.active = False
        self.frames_swallowed = 0  # client frames read and dropped during holes
        self.nodes_swallowed = 0  # server nodes never sent during holes

    def open(self, settings: BlackHoleSettings, *, delay: float = 0.0) -> None:
        """Open the hole after ``delay`` seconds (at once for 0); it replaces any earlier one."""
        self._cancel_timer()
        if delay <= 0:
            self._begin(settings)
            if settings.seconds is None:
                return
        self._timer = self._host.spawn(self._run(settings, delay), "black-hole")

    def after_login(self, settings: BlackHoleSettings | None) -> None:
        """``<success>`` was sent: open the hole the fault plan holds for new logins, if any."""
        if settings is not None:
            self.open(settings, delay=settings.after_login)

    def lift(self) -> None:
        """The control API turned black holes off: answer again, on the same connection."""
        self._cancel_timer()
        if self.active:
            self._finish("lifted")

    def swallows_frame(self) -> bool:
        """Whether the client frame just read is dropped."""
        if self.active:
            self.frames_swallowed += 1
        return self.active

    def swallows_node(self) -> bool:
        """Whether the node about to be sent is dropped."""
        if self.active:
            self.nodes_swallowed += 1
        return self.active

    async def _run(self, settings: BlackHoleSettings, delay: float) -> None:
        if delay > 0:
            await self._sleep(delay)
            self._begin(settings)
        if settings.seconds is None:
            return
        await self._sleep(settings.seconds)
        if settings.then == "recover":
            self._finish("recovers")
            return
        log.info("conn %d: black hole ends, the socket is dropped", self._host.conn_id)
        await self._host.close(hang_up=True)  # still silent until the socket is gone

    def _begin(self, settings: BlackHoleSettings) -> None:
        self.active = True
        lasting = "until lifted" if settings.seconds is None else f"{settings.seconds:g} s"
        log.info(
            "conn %d: black hole opens (%s, then %s)", self._host.conn_id, lasting, settings.then
        )

    def _finish(self, how: str) -> None:
        self.active = False
        log.info(
            "conn %d: black hole %s after swallowing %d client frames and %d server nodes",
            self._host.conn_id,
            how,
            self.frames_swallowed,
            self.nodes_swallowed,
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
