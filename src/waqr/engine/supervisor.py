"""The supervisor side of an engine child: spawn it, feed it commands, turn its pipe into
typed events, and make sure it never outlives its welcome.

Watchdogs, each ending the child with SIGKILL to its process group and a reason code:

- ``connect_timeout``: nothing useful (no QR, connection, refusal or error) within
  ``start_timeout`` (a proxy or middlebox that accepts and never answers hangs neonize's
  connect forever);
- ``stop_timeout``: not gone within ``stop_timeout`` of being asked to stop (neonize's
  stop() blocks on the lock a hung connect holds);
- ``engine_unresponsive``: a command (``ping``, ``pair_phone``, ``logout``, ``send_text``)
  not answered within its timeout (the child is stuck in an FFI call, or its loop is);
- ``engine_protocol_error``: a message the pipe protocol does not allow (see ``wire.py``).

A child that dies by itself becomes ``EngineExited(reason="engine_crashed")``. Whatever
happens, the event stream ends with one EngineExited and :meth:`ChildEngine.stop` returns
within ``stop_timeout`` plus a few seconds: one reconnect, never a dead service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import AsyncIterator, Sequence
from typing import Any

from waqr.engine import protocol as p
from waqr.engine.metrics import ENGINE_EXITS, ENGINE_STARTS
from waqr.engine.wire import (
    MAX_LINE,
    Overlong,
    Reply,
    WireError,
    decode_event,
    encode_command,
    read_lines,
)
from waqr.errors import EngineCommandFailed
from waqr.logs import log_event
from waqr.tasks import cancel, spawn

log = logging.getLogger("waqr.engine")
child_log = logging.getLogger("waqr.engine.child")

CHILD_ARGV = (sys.executable, "-m", "waqr.engine.child")
# Events that prove the child got somewhere; until one arrives the start watchdog runs. A
# 503 refusal counts: the server answered, and whatsmeow retries by itself.
_PROGRESS = (
    p.QrIssued,
    p.Connected,
    p.PairSuccess,
    p.LoggedOut,
    p.TemporaryBan,
    p.ClientOutdated,
    p.ConnectFailure,
    p.ServerUnavailable,
    p.StreamError,
    p.StreamReplaced,
    p.DialFailed,
)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_ENVELOPE = ("ts", "level", "event", "logger", "pid", "source")
# A log line longer than this is dropped (with a warning), never allowed to stall the pipe.
MAX_LOG_LINE = 64 * 1024
# After SIGKILL the kernel reaps at once; these bound the wait for an unkillable child
# (stuck in uninterruptible I/O) and for the read of what it left in its event pipe.
_REAP_TIMEOUT = 3.0
_DRAIN_TIMEOUT = 1.0


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running after SIGKILL"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class ChildEngine:
    """An :class:`~waqr.engine.protocol.Engine` hosted in a child process (``argv``, by
    default ``python -m waqr.engine.child``)."""

    def __init__(
        self,
        config: p.EngineConfig,
        *,
        start_timeout: float,
        stop_timeout: float,
        command_timeout: float = 30.0,
        ping_timeout: float = 10.0,
        env: dict[str, str] | None = None,
        argv: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.command_timeout = command_timeout
        self.ping_timeout = ping_timeout
        self.env = env
        self.argv = list(argv or CHILD_ARGV)
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._events: asyncio.Queue[p.EngineEvent] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[str | None]] = {}
        self._last_id = 0
        self._progress = asyncio.Event()
        self._stopping = False
        self._kill_reason: tuple[str, str] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._exited = asyncio.Event()

    # --- Engine protocol ------------------------------------------------------------------
    async def start(self) -> None:
        self._proc = proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            # Its own process group: a Ctrl-C meant for the service reaches the engine only
            # through an orderly stop, never mid-FFI-call; and a kill reaches all of it.
            start_new_session=True,
        )
        self.pid = proc.pid
        log_event(log, "engine child started", pid=self.pid)
        ENGINE_STARTS.inc()
        config = {
            "store_path": self.config.store_path,
            "proxy": self.config.proxy,
            "log_level": self.config.log_level,
            # The child gives up on an orderly stop in half our patience, so it exits by
            # itself (reason "stopped") rather than by our SIGKILL.
            "stop_grace": self.stop_timeout / 2,
        }
        # The proxy URL may carry a password: it travels over the pipe, never on argv.
        self._write(json.dumps(config).encode() + b"\n")
        # spawn() keeps the pumps referenced until they end with the child's pipes.
        spawn(self._pump_events(proc), name=f"engine-events-{self.pid}")
        spawn(self._pump_logs(proc), name=f"engine-logs-{self.pid}")
        self._watchdog = spawn(self._start_watchdog(), name=f"engine-watchdog-{self.pid}")

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or self._exited.is_set():
            return
        self._stopping = True
        if proc.returncode is None:
            with contextlib.suppress(OSError, RuntimeError):
                self._write(encode_command({"id": self._next_id(), "cmd": "stop"}))
        if await self._ended_within(self.stop_timeout):
            return
        self._kill("stop_timeout", f"did not stop within {self.stop_timeout:g} s")
        if not await self._ended_within(_REAP_TIMEOUT + _DRAIN_TIMEOUT + 1.0):
            # Unreachable short of a kernel that will not reap; the caller must go on anyway.
            log_event(
                log, "engine child did not end after SIGKILL", level=logging.ERROR, pid=self.pid
            )

    async def logout(self) -> None:
        await self._command("logout", within=self.command_timeout)

    async def pair_phone(self, phone_digits: str) -> str:
        code = await self._command("pair_phone", within=self.command_timeout, phone=phone_digits)
        return str(code)

    async def ping(self) -> None:
        await self._command("ping", within=self.ping_timeout)

    async def send_text(self, to: str, text: str, reply_to: str | None = None) -> str:
        message_id = await self._command(
            "send_text", within=self.command_timeout, to=to, text=text, reply_to=reply_to
        )
        return str(message_id)

    async def persisted(self, delivery: int) -> None:
        # No reply: the child's handler is what waits for this line, not us.
        if self._proc is None or self._exited.is_set():
            return
        with contextlib.suppress(OSError, RuntimeError):
            self._write(
                encode_command({"id": self._next_id(), "cmd": "persisted", "delivery": delivery})
            )

    async def events(self) -> AsyncIterator[p.EngineEvent]:
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, p.EngineExited):
                return

    # --- commands -------------------------------------------------------------------------
    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _write(self, data: bytes) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("engine child not started")
        self._proc.stdin.write(data)

    async def _command(self, name: str, *, within: float, **args: Any) -> str | None:
        if self._proc is None or self._exited.is_set():
            raise EngineCommandFailed(f"engine is not running ({name})")
        command_id = self._next_id()
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        try:
            self._write(encode_command({"id": command_id, "cmd": name, **args}))
            async with asyncio.timeout(within):
                return await future
        except TimeoutError as exc:
            # Whatever holds the child up (a hung FFI call, a stuck loop) holds every later
            # command too: only a fresh child helps.
            self._kill("engine_unresponsive", f"{name} not answered within {within:g} s")
            raise EngineCommandFailed(f"engine did not answer {name} within {within:g} s") from exc
        except (OSError, RuntimeError) as exc:
            raise EngineCommandFailed(f"engine pipe closed during {name}") from exc
        finally:
            self._pending.pop(command_id, None)

    def _resolve(self, reply: Reply) -> None:
        if not 0 < reply.id <= self._last_id:
            raise WireError("reply to a command that was never sent")
        future = self._pending.get(reply.id)
        if future is None or future.done():
            return  # a stop's reply, or one that came after its caller gave up
        if reply.ok:
            future.set_result(reply.result)
        else:
            future.set_exception(EngineCommandFailed(reply.error or "engine error"))

    # --- watchdogs ------------------------------------------------------------------------
    def _kill(self, reason: str, detail: str) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        if self._kill_reason is None:
            self._kill_reason = (reason, detail)
        log_event(log, "killing engine child", level=logging.WARNING, pid=self.pid, reason=reason)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    async def _ended_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._exited.wait()
        except TimeoutError:
            return False
        return True

    async def _start_watchdog(self) -> None:
        try:
            async with asyncio.timeout(self.start_timeout):
                await self._progress.wait()
        except TimeoutError:
            self._kill(
                "connect_timeout",
                f"no QR, connection or error within {self.start_timeout:g} s of connecting",
            )

    # --- the event pipe -------------------------------------------------------------------
    async def _pump_events(self, proc: asyncio.subprocess.Process) -> None:
        """Events until the pipe ends, then the child's end: whatever goes wrong in between,
        ``_exited`` is set and one EngineExited is the last event."""
        last_word: p.EngineExited | None = None
        try:
            last_word = await self._read_events(proc)
        except Exception as exc:
            # A bug here must not leave a child nobody listens to, nor a stop() that waits.
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            log_event(
                log,
                "engine event pump failed",
                level=logging.ERROR,
                pid=self.pid,
                error=type(exc).__name__,  # not str(exc): it may quote a message
                where=f"{frame.filename}:{frame.lineno} in {frame.name}",
            )
            self._kill("engine_protocol_error", f"reading its events failed ({type(exc).__name__})")
        finally:
            try:
                await self._reap(proc)
            finally:
                self._finish(proc, last_word)

    async def _read_events(self, proc: asyncio.subprocess.Process) -> p.EngineExited | None:
        """Relay the child's events; returns its own last word, if it sent one."""
        assert proc.stdout is not None
        last_word: p.EngineExited | None = None
        async for line in read_lines(proc.stdout, MAX_LINE):
            try:
                if isinstance(line, Overlong):
                    raise WireError(f"message longer than {MAX_LINE} bytes")
                message = decode_event(line)
                if isinstance(message, Reply):
                    self._resolve(message)
                    continue
            except WireError as exc:
                length = line.length if isinstance(line, Overlong) else len(line)
                # Never the line itself: it may carry a QR payload or a phone number.
                log_event(
                    log,
                    "engine broke the pipe protocol",
                    level=logging.ERROR,
                    pid=self.pid,
                    fault=str(exc),
                    length=length,
                )
                self._kill("engine_protocol_error", str(exc))
                return None
            if isinstance(message, p.EngineExited):
                last_word = message  # delivered by _finish, as the stream's last event
                continue
            if isinstance(message, _PROGRESS):
                self._progress.set()
            self._events.put_nowait(message)
        return last_word

    async def _reap(self, proc: asyncio.subprocess.Process) -> None:
        await cancel(self._watchdog)
        if proc.returncode is None and self._kill_reason is None:
            # The pipe closed without a kill: a child on its way out is gone at once; one
            # that lives on without its event pipe is of no use to anyone.
            try:
                async with asyncio.timeout(self.stop_timeout):
                    await proc.wait()
            except TimeoutError:
                self._kill("engine_protocol_error", "closed its event pipe but kept running")
        if proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_REAP_TIMEOUT):
                    await proc.wait()
        # Read what a killed child left in the pipe, so the pipe sees EOF and is closed.
        if proc.stdout is not None:
            with contextlib.suppress(TimeoutError, OSError):
                async with asyncio.timeout(_DRAIN_TIMEOUT):
                    while await proc.stdout.read(MAX_LOG_LINE):
                        pass

    def _finish(self, proc: asyncio.subprocess.Process, last_word: p.EngineExited | None) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(EngineCommandFailed("engine child exited"))
        detail = describe_exit(proc.returncode)
        if last_word is not None:
            final = last_word
        elif self._kill_reason is not None:
            reason, why = self._kill_reason
            final = p.EngineExited(expected=False, reason=reason, detail=f"{why}; {detail}")
        elif self._stopping:
            final = p.EngineExited(expected=True, reason="stopped", detail=detail)
        else:
            final = p.EngineExited(expected=False, reason="engine_crashed", detail=detail)
        log_event(log, "engine child ended", pid=self.pid, reason=final.reason, detail=detail)
        ENGINE_EXITS.labels(reason=final.reason).inc()
        self._exited.set()
        self._events.put_nowait(final)

    # --- the log pipe ---------------------------------------------------------------------
    async def _pump_logs(self, proc: asyncio.subprocess.Process) -> None:
        """Relay the child's stderr until EOF. Nothing it writes stops this loop: a child
        blocked on a full stderr pipe would hang in the middle of whatever it was doing."""
        assert proc.stderr is not None
        async for line in read_lines(proc.stderr, MAX_LOG_LINE):
            if isinstance(line, Overlong):
                log_event(
                    log,
                    "dropped an over-long engine log line",
                    level=logging.WARNING,
                    pid=self.pid,
                    length=line.length,
                    limit=MAX_LOG_LINE,
                )
                continue
            try:
                self._relay_log(line)
            except Exception as exc:
                log_event(
                    log,
                    "unreadable engine log line",
                    level=logging.WARNING,
                    pid=self.pid,
                    error=type(exc).__name__,
                    length=len(line),
                )

    def _relay_log(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip()
        if not text:
            return
        record = _json_object(text)
        if record is None:
            # Raw output from neonize or the Go runtime (a Go panic prints here).
            bad = text.startswith(("fatal error", "panic:", "SIGABRT", "SIGSEGV"))
            log_event(
                child_log,
                text,
                level=logging.ERROR if bad else logging.DEBUG,
                pid=self.pid,
                source="stdout",
            )
            return
        fields = {k: v for k, v in record.items() if k not in _ENVELOPE}
        log_event(
            child_log,
            str(record.get("event", "")),
            level=_LEVELS.get(str(record.get("level")), logging.ERROR),
            pid=self.pid,
            source=record.get("logger"),
            **fields,
        )


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None
