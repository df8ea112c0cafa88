"""What a session's actor reads from its one queue: commands from the API, the engine's events,
and the results of engine calls it started. Commands carry a future the caller awaits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from waqr.engine import protocol as p


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class Command:
    reply: asyncio.Future[Any] = field(default_factory=_future, kw_only=True)
    # Set when the command waited behind a logout or pairing that was running.
    queued_behind: str | None = field(default=None, kw_only=True)

    def answer(self, value: Any) -> None:
        if not self.reply.done():
            self.reply.set_result(value)

    def refuse(self, error: BaseException) -> None:
        if not self.reply.done():
            self.reply.set_exception(error)


@dataclass(eq=False)
class Reconnect(Command):
    reset: bool = False


@dataclass(eq=False)
class Logout(Command):
    pass


@dataclass(eq=False)
class PairCode(Command):
    phone_digits: str = ""


@dataclass(eq=False)
class Close(Command):
    pass


@dataclass(frozen=True, slots=True)
class Demand:
    """Someone asked for a QR (GET /qr, an image, a pairing code)."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Nothing but a reason to look at the clock again (a test moved it)."""


@dataclass(frozen=True, slots=True)
class FromEngine:
    engine: p.Engine
    event: p.EngineEvent


@dataclass(frozen=True, slots=True)
class CallDone:
    """An engine call the actor started (pair, unlink, ping) has finished."""

    name: str
    engine: p.Engine
    token: object  # which call: a cancelled call's late result is told apart by it
    result: Any = None
    error: BaseException | None = None


Request = Reconnect | Logout | PairCode  # what the API asks; may wait behind a running call
Input = Request | Close | Demand | Tick | FromEngine | CallDone


@dataclass(frozen=True, slots=True)
class ReconnectResult:
    started: bool  # False: folded into a restart already under way
    queued_behind: str | None


@dataclass(frozen=True, slots=True)
class LogoutResult:
    unlinked: bool  # WhatsApp confirmed the unlink
    queued_behind: str | None
