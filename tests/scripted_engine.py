"""A scripted Engine for unit tests of the session: the test plays the engine's part by pushing
events (or by staying silent, as whatsmeow does); the engine records what the session asked.

A ``QrIssued`` whose ``issued_at`` is 0 is stamped with the time it is emitted."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

from waqr.engine import protocol as p
from waqr.errors import EngineCommandFailed


def _stamped(event: p.EngineEvent) -> p.EngineEvent:
    if isinstance(event, p.QrIssued) and event.issued_at == 0:
        return dataclasses.replace(event, issued_at=time.time())
    return event


class ScriptedEngine:
    def __init__(self, script: EngineScript) -> None:
        self.script = script
        self.queue: asyncio.Queue[p.EngineEvent] = asyncio.Queue()
        self.started = False
        self.stopped = False
        self.logged_out = False
        self.paired_with: str | None = None
        self.pings = 0
        self.pid: int | None = None
        self.sent: list[tuple[str, str, str | None]] = []  # send_text calls: to, text, reply_to
        self.persisted_deliveries: list[int] = []
        self.unlink_gate = asyncio.Event()  # logout() waits for it when the script says so
        self.unlink_gate.set()

    async def start(self) -> None:
        if self.script.start_error is not None:
            raise self.script.start_error
        await self.script.start_gate.wait()
        self.started = True
        for event in self.script.on_start:
            self.queue.put_nowait(_stamped(event))

    async def stop(self) -> None:
        # Like the child engine: before start() has finished there is nothing to stop yet.
        if self.started and not self.stopped:
            self.stopped = True
            self.queue.put_nowait(p.EngineExited(expected=True, reason="stopped", detail="test"))

    async def logout(self) -> None:
        await self.unlink_gate.wait()
        if self.script.logout_fails:
            raise EngineCommandFailed("offline")
        self.logged_out = True

    async def pair_phone(self, phone_digits: str) -> str:
        if self.script.hang_commands:
            await asyncio.Event().wait()
        self.paired_with = phone_digits
        return "ABCD-EFGH"

    async def send_text(self, to: str, text: str, reply_to: str | None = None) -> str:
        await self.script.send_gate.wait()
        if self.script.send_error is not None:
            raise self.script.send_error
        self.sent.append((to, text, reply_to))
        return f"3EB0SCRIPTED{len(self.sent):04d}"

    async def persisted(self, delivery: int) -> None:
        self.persisted_deliveries.append(delivery)

    async def ping(self) -> None:
        self.pings += 1
        if self.script.hang_commands:
            await asyncio.Event().wait()

    async def events(self) -> AsyncIterator[p.EngineEvent]:
        while True:
            event = await self.queue.get()
            yield event
            if isinstance(event, p.EngineExited):
                return

    def emit(self, *events: p.EngineEvent) -> None:
        for event in events:
            self.queue.put_nowait(_stamped(event))

    @property
    def running(self) -> list[ScriptedEngine]:
        return [e for e in self.script.engines if e.started and not e.stopped]

    def crash(self, reason: str = "engine_crashed") -> None:
        self.queue.put_nowait(p.EngineExited(expected=False, reason=reason, detail="test"))


class EngineScript:
    """The factory the session calls; keeps every engine it made."""

    def __init__(self, *on_start: p.EngineEvent) -> None:
        self.on_start: list[p.EngineEvent] = list(on_start)
        self.engines: list[ScriptedEngine] = []
        self.logout_fails = False
        self.hang_commands = False  # pair_phone and ping never answer
        self.start_error: Exception | None = None
        self.send_error: Exception | None = None  # send_text raises it
        self.send_gate = asyncio.Event()  # send_text waits for it (clear it to hold sends)
        self.send_gate.set()
        self.start_gate = asyncio.Event()  # start() waits for it (clear it to hold starts)
        self.start_gate.set()
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
