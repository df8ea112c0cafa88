"""The supervisor side of an engine child: spawn it, feed it commands, turn its pipe into
typed events, and make sure it never outlives its welcome.

Watchdogs: a child that reports nothing useful (no QR, no connection, no error) within
``start_timeout`` is SIGKILLed with reason ``connect_timeout`` (a proxy or middlebox that
accepts and never answers hangs neonize's connect forever); a child that does not exit
within ``stop_timeout`` of being asked to stop is SIGKILLed (neonize's stop() blocks on the
lock a hung connect holds). A child that dies by itself becomes ``EngineExited(reason=
"engine_crashed")``: one reconnect, never a dead service.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from waqr.engine import protocol as p
from waqr.engine.wire import decode_event, encode_command
from waqr.errors import EngineCommandFailed
from waqr.logs import log_event
from waqr.tasks import cancel, spawn

log = logging.getLogger("waqr.engine")
child_log = logging.getLogger("waqr.engine.child")

# Events that prove the child got somewhere; until one arrives the start watchdog runs.
_PROGRESS = (
    p.QrIssued,
    p.Connected,
    p.PairSuccess,
    p.LoggedOut,
    p.TemporaryBan,
    p.ClientOutdated,
    p.ConnectFailure,
    p.StreamError,
    p.StreamReplaced,
    p.DialFailed,
)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class ChildEngine:
    """An :class:`~waqr.engine.protocol.Engine` hosted in a child process."""

    def __init__(
        self,
        config: p.EngineConfig,
        *,
        start_timeout: float,
        stop_timeout: float,
        command_timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.command_timeout = command_timeout
        self.env = env
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._events: asyncio.Queue[p.EngineEvent] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._progress = asyncio.Event()
        self._stopping = False
        self._kill_reason: tuple[str, str] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._exited = asyncio.Event()

    # --- Engine protocol ------------------------------------------------------------------
    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "waqr.engine.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            # Its own process group: a Ctrl-C meant for the service reaches the engine only
            # through an orderly stop, never mid-FFI-call.
            start_new_session=True,
        )
        self.pid = self._proc.pid
        log_event(log, "engine child started", pid=self.pid)
        config = {
            "store_path": self.config.store_path,
            "proxy": self.config.proxy,
            "log_level": self.config.log_level,
        }
        # The proxy URL may carry a password: it travels over the pipe, never on argv.
        self._write(json.dumps(config).encode() + b"\n")
        # spawn() keeps the pumps referenced until they end with the child's pipes.
        spawn(self._pump_events(), name=f"engine-events-{self.pid}")
        spawn(self._pump_logs(), name=f"engine-logs-{self.pid}")
        self._watchdog = spawn(self._start_watchdog(), name=f"engine-watchdog-{self.pid}")

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or self._exited.is_set():
            return
        self._stopping = True
        if proc.returncode is None:
            with contextlib.suppress(OSError, RuntimeError):
                self._write(encode_command({"id": next(self._ids), "cmd": "stop"}))
            try:
                await asyncio.wait_for(asyncio.shield(self._exited.wait()), self.stop_timeout)
            except TimeoutError:
                self._kill("stop_timeout", f"did not stop within {self.stop_timeout:g} s")
        await self._exited.wait()

    async def logout(self) -> None:
        await self._command("logout")

    async def pair_phone(self, phone_digits: str) -> str:
        return str(await self._command("pair_phone", phone=phone_digits))

    async def events(self) -> AsyncIterator[p.EngineEvent]:
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, p.EngineExited):
                return

    # --- internals ------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("engine child not started")
        self._proc.stdin.write(data)

    async def _command(self, name: str, **args: Any) -> Any:
        if self._proc is None or self._exited.is_set():
            raise EngineCommandFailed(f"engine is not running ({name})")
        command_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            self._write(encode_command({"id": command_id, "cmd": name, **args}))
            return await asyncio.wait_for(future, self.command_timeout)
        except TimeoutError as exc:
            raise EngineCommandFailed(
                f"engine did not answer {name} within {self.command_timeout:g} s"
            ) from exc
        except (OSError, RuntimeError) as exc:
            raise EngineCommandFailed(f"engine pipe closed during {name}") from exc
        finally:
            self._pending.pop(command_id, None)

    def _kill(self, reason: str, detail: str) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        if self._kill_reason is None:
            self._kill_reason = (reason, detail)
        log_event(log, "killing engine child", level=logging.WARNING, pid=self.pid, reason=reason)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    async def _start_watchdog(self) -> None:
        try:
            await asyncio.wait_for(self._progress.wait(), self.start_timeout)
        except TimeoutError:
            self._kill(
                "connect_timeout",
                f"no QR, connection or error within {self.start_timeout:g} s of connecting",
            )

    async def _pump_events(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        unavailable: p.EngineExited | None = None
        while line := await proc.stdout.readline():
            try:
                message = decode_event(line)
            except ValueError:
                log_event(log, "unreadable engine message", level=logging.WARNING)
                continue
            if isinstance(message, dict):
                self._resolve(message)
                continue
            if isinstance(message, p.EngineExited):
                unavailable = message  # the child's own last word; delivered below
                continue
            if isinstance(message, _PROGRESS):
                self._progress.set()
            await self._events.put(message)
        returncode = await proc.wait()
        await cancel(self._watchdog)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(EngineCommandFailed("engine child exited"))
        detail = describe_exit(returncode)
        if unavailable is not None:
            final = unavailable
        elif self._kill_reason is not None:
            reason, why = self._kill_reason
            final = p.EngineExited(expected=False, reason=reason, detail=f"{why}; {detail}")
        elif self._stopping:
            final = p.EngineExited(expected=True, reason="stopped", detail=detail)
        else:
            final = p.EngineExited(expected=False, reason="engine_crashed", detail=detail)
        log_event(log, "engine child ended", pid=self.pid, reason=final.reason, detail=detail)
        self._exited.set()
        await self._events.put(final)

    def _resolve(self, reply: dict[str, Any]) -> None:
        future = self._pending.get(int(reply.get("id", 0)))
        if future is None or future.done():
            return
        if reply.get("ok"):
            future.set_result(reply.get("result"))
        else:
            future.set_exception(EngineCommandFailed(str(reply.get("error") or "engine error")))

    async def _pump_logs(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        while raw := await proc.stderr.readline():
            text = raw.decode(errors="replace").rstrip()
            if not text:
                continue
            try:
                record = json.loads(text)
                level = _LEVELS.get(str(record.get("level")), logging.ERROR)
                fields = {
                    k: v for k, v in record.items() if k not in ("ts", "level", "event", "logger")
                }
                log_event(
                    child_log,
                    str(record.get("event", "")),
                    level=level,
                    pid=self.pid,
                    source=record.get("logger"),
                    **fields,
                )
            except (ValueError, AttributeError):
                # Raw output from neonize or the Go runtime (a Go panic prints here).
                bad = text.startswith(("fatal error", "panic:", "SIGABRT", "SIGSEGV"))
                log_event(
                    child_log,
                    text,
                    level=logging.ERROR if bad else logging.DEBUG,
                    pid=self.pid,
                    source="stdout",
                )
