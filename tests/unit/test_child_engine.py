"""The engine supervisor against a fake child that breaks the rules, and the real child's
command loop against a fake neonize client.

Whatever the child writes, the supervisor ends it with a typed reason, the child process is
gone, ``stop()`` returns and no line the child wrote reaches the logs. (``asyncio.timeout``
around the awaits below is a hang guard, not a timing assertion.)
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.procs import process_alive
from waqr.engine import child as child_module
from waqr.engine import protocol as p
from waqr.engine import supervisor
from waqr.engine.child import EngineChild
from waqr.engine.supervisor import ChildEngine
from waqr.engine.wire import MAX_LINE, Reply, decode_event
from waqr.errors import EngineCommandFailed

pytestmark = pytest.mark.timeout(30)

HANG_GUARD = 15.0
# Shaped like what a real child carries (a QR payload, a phone number): never to be logged.
SECRET = "2@SECRETref,SECRETnoise,15551234567"

# The fake child: speaks the pipe protocol (or breaks it) as argv[1] says.
FAKE_CHILD = r"""
import json, os, sys, time

mode = sys.argv[1]
with open(sys.argv[2], "rb") as file:
    payload = file.read()
out = sys.stdout.buffer


def send(body):
    out.write(json.dumps(body).encode() + b"\n")
    out.flush()


config = json.loads(sys.stdin.buffer.readline())
if mode == "crash":
    sys.exit(1)
if mode == "deaf":
    time.sleep(3600)
if mode == "close_pipe":
    os.close(1)
    time.sleep(3600)
if mode in ("say", "say_then_exit"):
    out.write(payload)
    out.flush()
    if mode == "say_then_exit":
        sys.exit(3)
if mode == "noisy":
    # Blocks until the supervisor has read it all: a 64 KiB pipe cannot hold it.
    sys.stderr.buffer.write(payload)
    sys.stderr.flush()
if mode in ("serve", "mute", "noisy"):
    send({"event": "qr", "code": "2@fake", "lifetime": 60, "issued_at": time.time()})
if mode == "refused_503":
    send({"event": "server_unavailable", "code": 503})
    time.sleep(float(config["stop_grace"]))
    send({"event": "disconnected"})
for line in sys.stdin.buffer:
    command = json.loads(line)
    reply = {"event": "reply", "id": command["id"], "ok": True, "result": None, "error": ""}
    if command["cmd"] == "stop":
        send(reply)
        sys.exit(0)
    if mode == "mute":
        continue
    if command["cmd"] == "pair_phone":
        reply["result"] = "ABCD-EFGH"
    send(reply)
"""

EngineMaker = Callable[..., ChildEngine]


@pytest.fixture
async def fake_engine(tmp_path: Path) -> AsyncIterator[EngineMaker]:
    """Makes started ChildEngines running the fake child; stops them all afterwards."""
    script = tmp_path / "fake_child.py"
    script.write_text(FAKE_CHILD)
    numbers = itertools.count()
    made: list[ChildEngine] = []

    async def make(
        mode: str,
        payload: bytes = b"",
        *,
        start_timeout: float = 10.0,
        stop_timeout: float = 2.0,
        command_timeout: float = 5.0,
        ping_timeout: float = 5.0,
    ) -> ChildEngine:
        payload_file = tmp_path / f"payload-{next(numbers)}"
        payload_file.write_bytes(payload)
        engine = ChildEngine(
            p.EngineConfig(store_path=str(tmp_path / "store.db")),
            start_timeout=start_timeout,
            stop_timeout=stop_timeout,
            command_timeout=command_timeout,
            ping_timeout=ping_timeout,
            argv=[sys.executable, str(script), mode, str(payload_file)],
        )
        made.append(engine)
        await engine.start()
        return engine

    yield make
    for engine in made:
        async with asyncio.timeout(HANG_GUARD):
            await engine.stop()


async def all_events(engine: ChildEngine) -> list[p.EngineEvent]:
    async with asyncio.timeout(HANG_GUARD):
        return [event async for event in engine.events()]


async def next_event(events: AsyncIterator[p.EngineEvent]) -> p.EngineEvent:
    async with asyncio.timeout(HANG_GUARD):
        return await anext(events)


def assert_nothing_secret_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert "SECRET" not in record.getMessage()
        assert "SECRET" not in repr(vars(record))


def event_line(**body: Any) -> bytes:
    return json.dumps(body).encode() + b"\n"


def qr_line(**fields: Any) -> bytes:
    return event_line(**{"event": "qr", "code": SECRET, "lifetime": 60, "issued_at": 1, **fields})


def reply_line(**fields: Any) -> bytes:
    return event_line(**{"event": "reply", "ok": True, "result": None, "error": "", **fields})


# --- the event pipe: every malformed message ends the engine --------------------------------


def over_long_line() -> bytes:
    return qr_line(code=SECRET + "x" * MAX_LINE)


def endless_line() -> bytes:
    return SECRET.encode() + b"x" * (2 * MAX_LINE)  # and no newline, ever


MALFORMED = {
    "over_long": (over_long_line(), "longer than"),
    "endless": (endless_line(), "longer than"),
    "not_json": (SECRET.encode() + b"\n", "not JSON"),
    "not_an_object": (b'["x"]\n', "not an object"),
    "no_event_name": (json.dumps({"code": SECRET}).encode() + b"\n", "no event name"),
    "unknown_event": (event_line(event=SECRET), "unknown event"),
    "missing_field": (event_line(event="qr", code=SECRET), "lacks field lifetime, issued_at"),
    "extra_field": (qr_line(**{SECRET: 1}), "unexpected field"),
    "extra_named_field": (qr_line(shown_for=20), "unexpected field 'shown_for'"),
    "wrong_type": (qr_line(lifetime="60"), "lifetime is str"),
    "bool_for_int": (
        event_line(event="logged_out", code=True, on_connect=False, node=None),
        "code is bool",
    ),
    "reply_without_id": (reply_line(), "lacks field id"),
    "reply_with_null_id": (reply_line(id=None), "id is NoneType"),
    "reply_with_text_id": (reply_line(id="1"), "id is str"),
    "reply_with_unknown_id": (reply_line(id=99), "never sent"),
    "reply_with_zero_id": (reply_line(id=0), "never sent"),
    "reply_with_wrong_result": (reply_line(id=1, result=[SECRET]), "result is list"),
}


@pytest.mark.parametrize(("payload", "fault"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_message_ends_the_engine_with_a_protocol_error(
    fake_engine: EngineMaker, caplog: pytest.LogCaptureFixture, payload: bytes, fault: str
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = await fake_engine("say", payload)
    events = await all_events(engine)
    assert len(events) == 1
    [exited] = events
    assert isinstance(exited, p.EngineExited)
    assert (exited.expected, exited.reason) == (False, "engine_protocol_error")
    assert fault in exited.detail
    assert "SECRET" not in exited.detail
    assert engine.pid is not None and not process_alive(engine.pid)
    async with asyncio.timeout(HANG_GUARD):
        await engine.stop()
    reports = [r for r in caplog.records if r.getMessage() == "engine broke the pipe protocol"]
    assert len(reports) == 1  # logged once, with its length and its fault
    length = reports[0].length  # type: ignore[attr-defined]
    assert length > MAX_LINE if len(payload) > MAX_LINE else length == len(payload)
    assert_nothing_secret_logged(caplog)


async def test_a_line_over_the_limit_ends_the_engine_with_a_protocol_error(
    fake_engine: EngineMaker,
) -> None:
    engine = await fake_engine("say", over_long_line())
    [exited] = await all_events(engine)
    assert exited == p.EngineExited(
        expected=False,
        reason="engine_protocol_error",
        detail=f"message longer than {MAX_LINE} bytes; killed by SIGKILL",
    )


async def test_good_events_before_a_bad_one_are_delivered_in_order(
    fake_engine: EngineMaker,
) -> None:
    good = event_line(event="server_unavailable", code=503)
    engine = await fake_engine("say", good + b"garbage\n" + good)
    events = await all_events(engine)
    assert events[0] == p.ServerUnavailable(code=503)
    assert isinstance(events[1], p.EngineExited) and events[1].reason == "engine_protocol_error"
    assert len(events) == 2


async def test_a_failure_inside_the_event_pump_still_ends_the_stream_and_the_child(
    fake_engine: EngineMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_decoder(line: bytes) -> p.EngineEvent | Reply:
        raise RuntimeError("a bug in the supervisor")

    monkeypatch.setattr(supervisor, "decode_event", broken_decoder)
    engine = await fake_engine("serve")
    [exited] = await all_events(engine)
    assert isinstance(exited, p.EngineExited)
    assert exited.reason == "engine_protocol_error"
    assert "RuntimeError" in exited.detail
    assert engine.pid is not None and not process_alive(engine.pid)
    async with asyncio.timeout(HANG_GUARD):
        await engine.stop()


async def test_a_child_that_closes_its_event_pipe_but_lives_on_is_killed(
    fake_engine: EngineMaker,
) -> None:
    engine = await fake_engine("close_pipe", stop_timeout=0.5)
    [exited] = await all_events(engine)
    assert isinstance(exited, p.EngineExited)
    assert exited.reason == "engine_protocol_error"
    assert "closed its event pipe" in exited.detail
    assert engine.pid is not None and not process_alive(engine.pid)


async def test_the_childs_own_last_word_ends_the_stream(fake_engine: EngineMaker) -> None:
    last_word = p.EngineExited(expected=False, reason="engine_unavailable", detail="no library")
    engine = await fake_engine(
        "say_then_exit",
        event_line(
            event="exited", expected=False, reason="engine_unavailable", detail="no library"
        ),
    )
    assert await all_events(engine) == [last_word]


async def test_a_child_that_dies_by_itself_is_reported_as_crashed(
    fake_engine: EngineMaker,
) -> None:
    engine = await fake_engine("crash")
    assert await all_events(engine) == [
        p.EngineExited(expected=False, reason="engine_crashed", detail="exited with code 1")
    ]


# --- commands, ping, stop -------------------------------------------------------------------


async def test_a_child_that_answers_ping_stays_up(fake_engine: EngineMaker) -> None:
    engine = await fake_engine("serve")
    events = engine.events()
    assert isinstance(await next_event(events), p.QrIssued)
    async with asyncio.timeout(HANG_GUARD):
        await engine.ping()
        assert await engine.pair_phone("15551234567") == "ABCD-EFGH"
        await engine.stop()
    assert await next_event(events) == p.EngineExited(
        expected=True, reason="stopped", detail="exited with code 0"
    )


async def test_an_unanswered_ping_recycles_the_engine_as_unresponsive(
    fake_engine: EngineMaker,
) -> None:
    engine = await fake_engine("mute", ping_timeout=0.3)
    events = engine.events()
    assert isinstance(await next_event(events), p.QrIssued)
    with pytest.raises(EngineCommandFailed, match="did not answer ping"):
        async with asyncio.timeout(HANG_GUARD):
            await engine.ping()
    exited = await next_event(events)
    assert isinstance(exited, p.EngineExited)
    assert (exited.expected, exited.reason) == (False, "engine_unresponsive")
    assert "ping not answered" in exited.detail
    assert engine.pid is not None and not process_alive(engine.pid)


async def test_an_unanswered_command_recycles_the_engine_as_unresponsive(
    fake_engine: EngineMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    engine = await fake_engine("mute", command_timeout=0.3)
    with pytest.raises(EngineCommandFailed, match="did not answer pair_phone"):
        async with asyncio.timeout(HANG_GUARD):
            await engine.pair_phone("15551234567")
    exited = (await all_events(engine))[-1]
    assert isinstance(exited, p.EngineExited)
    assert exited.reason == "engine_unresponsive"
    assert "15551234567" not in caplog.text


async def test_commands_to_an_ended_engine_fail_at_once(fake_engine: EngineMaker) -> None:
    engine = await fake_engine("crash")
    await all_events(engine)
    with pytest.raises(EngineCommandFailed, match="not running"):
        await engine.ping()


async def test_a_child_that_ignores_stop_is_killed_after_the_stop_timeout(
    fake_engine: EngineMaker,
) -> None:
    engine = await fake_engine("deaf", stop_timeout=0.3)
    async with asyncio.timeout(HANG_GUARD):
        await engine.stop()
    [exited] = await all_events(engine)
    assert isinstance(exited, p.EngineExited)
    assert (exited.reason, exited.expected) == ("stop_timeout", False)
    assert engine.pid is not None and not process_alive(engine.pid)


# --- the start watchdog ---------------------------------------------------------------------


async def test_a_503_refusal_counts_as_progress_for_the_start_watchdog(
    fake_engine: EngineMaker,
) -> None:
    # The fake child waits stop_grace (stop_timeout / 2 = 1 s) between the two events: five
    # times the start timeout, which a 503 must not turn into connect_timeout.
    engine = await fake_engine("refused_503", start_timeout=0.2, stop_timeout=2.0)
    events = engine.events()
    assert await next_event(events) == p.ServerUnavailable(code=503)
    assert await next_event(events) == p.Disconnected()
    async with asyncio.timeout(HANG_GUARD):
        await engine.stop()
    exited = await next_event(events)
    assert isinstance(exited, p.EngineExited) and exited.reason == "stopped"


async def test_a_child_that_reports_nothing_is_killed_as_connect_timeout(
    fake_engine: EngineMaker,
) -> None:
    engine = await fake_engine("deaf", start_timeout=0.2)
    [exited] = await all_events(engine)
    assert isinstance(exited, p.EngineExited) and exited.reason == "connect_timeout"


# --- the log pipe ---------------------------------------------------------------------------


async def test_a_log_line_over_the_limit_is_dropped_and_the_engine_keeps_working(
    fake_engine: EngineMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    huge = (SECRET + "x" * 200 * 1024).encode() + b"\n"
    engine = await fake_engine("noisy", huge + b'{"event": "after", "level": "warning"}\n')
    events = engine.events()
    assert isinstance(await next_event(events), p.QrIssued)
    async with asyncio.timeout(HANG_GUARD):
        await engine.ping()
        await engine.stop()
    exited = await next_event(events)
    assert isinstance(exited, p.EngineExited) and exited.reason == "stopped"
    dropped = [
        r for r in caplog.records if r.getMessage() == "dropped an over-long engine log line"
    ]
    assert len(dropped) == 1
    assert any(r.getMessage() == "after" for r in caplog.records)  # the next line came through
    assert_nothing_secret_logged(caplog)


# --- the real child's command loop, with a fake neonize client ------------------------------


class FakeClient:
    """Stands in for neonize's client: its PairPhone hangs until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.stopped = False

    async def PairPhone(self, phone: str, show_notification: bool) -> str:  # noqa: N802 (neonize's name)
        await self.release.wait()
        return "ABCD-EFGH"

    async def stop(self) -> None:
        self.stopped = True


@dataclass(frozen=True)
class Pipes:
    commands: int  # write end of the child's stdin
    events: int  # write end of the child's event pipe
    replies_from: int  # read end of the event pipe


@pytest.fixture
def pipes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipes]:
    command_r, command_w = os.pipe()
    event_r, event_w = os.pipe()
    os.set_blocking(event_r, False)
    stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(command_r, "rb")))
    monkeypatch.setattr(sys, "stdin", stdin)
    yield Pipes(commands=command_w, events=event_w, replies_from=event_r)
    stdin.close()
    for fd in (command_w, event_r, event_w):
        with contextlib.suppress(OSError):
            os.close(fd)


def send_commands(pipes: Pipes, *commands: dict[str, Any]) -> None:
    os.write(pipes.commands, b"".join(json.dumps(c).encode() + b"\n" for c in commands))


def received(pipes: Pipes) -> list[p.EngineEvent | Reply]:
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(pipes.replies_from, 65536):
            data += chunk
    return [decode_event(line) for line in data.splitlines(keepends=True)]


async def test_stop_is_answered_while_a_command_hangs_in_an_ffi_call(pipes: Pipes) -> None:
    child = EngineChild({"store_path": "unused", "stop_grace": 0.2}, pipes.events)
    child.client = client = FakeClient()
    send_commands(
        pipes,
        {"id": 1, "cmd": "pair_phone", "phone": "15551234567"},
        {"id": 2, "cmd": "ping"},
        {"id": 3, "cmd": "stop"},
    )
    async with asyncio.timeout(HANG_GUARD):
        await child.serve_commands()
    # The ping waits behind the hung PairPhone (that is what makes it a health check); stop
    # gave up on the FFI lock after its grace and answered anyway.
    assert received(pipes) == [Reply(id=3, ok=True, result=None, error="")]
    assert not client.stopped
    client.release.set()
    replies: list[p.EngineEvent | Reply] = []
    async with asyncio.timeout(HANG_GUARD):
        while len(replies) < 2:
            await asyncio.sleep(0.01)
            replies += received(pipes)
    assert replies == [
        Reply(id=1, ok=True, result="ABCD-EFGH", error=""),
        Reply(id=2, ok=True, result=None, error=""),
    ]


async def test_the_child_answers_ping_and_stops_its_client(pipes: Pipes) -> None:
    child = EngineChild({"store_path": "unused"}, pipes.events)
    child.client = client = FakeClient()
    send_commands(pipes, {"id": 1, "cmd": "ping"}, {"id": 2, "cmd": "nonsense"})
    serving = asyncio.create_task(child.serve_commands())
    replies: list[p.EngineEvent | Reply] = []
    async with asyncio.timeout(HANG_GUARD):
        while len(replies) < 2:
            await asyncio.sleep(0.01)
            replies += received(pipes)
        send_commands(pipes, {"id": 3, "cmd": "stop"})
        await serving
    replies += received(pipes)
    assert sorted(replies, key=lambda r: r.id if isinstance(r, Reply) else 0) == [
        Reply(id=1, ok=True, result=None, error=""),
        Reply(id=2, ok=False, result=None, error="unknown command 'nonsense'"),
        Reply(id=3, ok=True, result=None, error=""),
    ]
    assert client.stopped


async def test_a_qr_is_stamped_when_handed_over_not_after_the_batch_size_wait(
    pipes: Pipes, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_790_000_000.0]
    monkeypatch.setattr(child_module, "time", SimpleNamespace(time=lambda: now[0]))
    child = EngineChild({"store_path": "unused"}, pipes.events)
    issuing = asyncio.create_task(child.on_qr(None, b"2@ref,noise"))
    await asyncio.sleep(0)  # on_qr is now waiting to learn the batch size
    now[0] += 0.9
    child.learn_batch(6)
    async with asyncio.timeout(HANG_GUARD):
        await issuing
    assert received(pipes) == [
        p.QrIssued(code="2@ref,noise", lifetime=60.0, issued_at=1_790_000_000.0)
    ]
