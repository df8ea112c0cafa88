"""A scripted Engine for unit tests of the session state machine: the test plays the
engine's part by pushing events; the engine records what the session asked of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from waqr.engine import protocol as p
from waqr.errors import EngineCommandFailed


class ScriptedEngine:
    def __init__(self, script: EngineScript) -> None:
        self.script = script
        self.queue: asyncio.Queue[p.EngineEvent] = asyncio.Queue()
        self.started = False
        self.stopped = False
        self.logged_out = False
        self.paired_with: str | None = None
        self.pid: int | None = None

    async def start(self) -> None:
        self.started = True
        for event in self.script.on_start:
            self.queue.put_nowait(event)

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.queue.put_nowait(p.EngineExited(expected=True, reason="stopped", detail="test"))

    async def logout(self) -> None:
        if self.script.logout_fails:
            raise EngineCommandFailed("offline")
        self.logged_out = True

    async def pair_phone(self, phone_digits: str) -> str:
        self.paired_with = phone_digits
        return "ABCD-EFGH"

    async def events(self) -> AsyncIterator[p.EngineEvent]:
        while True:
            event = await self.queue.get()
            yield event
            if isinstance(event, p.EngineExited):
                return

    def emit(self, *events: p.EngineEvent) -> None:
        for event in events:
            self.queue.put_nowait(event)

    def crash(self, reason: str = "engine_crashed") -> None:
        self.queue.put_nowait(p.EngineExited(expected=False, reason=reason, detail="test"))


class EngineScript:
    """The factory the session calls; keeps every engine it made."""

    def __init__(self, *on_start: p.EngineEvent) -> None:
        self.on_start: list[p.EngineEvent] = list(on_start)
        self.engines: list[ScriptedEngine] = []
        self.logout_fails = False
        self.made = asyncio.Event()

    def __call__(self) -> ScriptedEngine:
        engine = ScriptedEngine(self)
        self.engines.append(engine)
        self.made.set()
        return engine

    @property
    def current(self) -> ScriptedEngine:
        return self.engines[-1]

    async def wait_for_engine(self, count: int, timeout: float = 5.0) -> ScriptedEngine:
        async with asyncio.timeout(timeout):
            while len(self.engines) < count:
                self.made.clear()
                await self.made.wait()
        return self.engines[count - 1]
