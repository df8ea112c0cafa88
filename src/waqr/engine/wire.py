"""The pipe protocol between the supervisor and the engine child: JSON lines.

Supervisor -> child (stdin): first a config line, then commands
``{"id": 3, "cmd": "pair_phone", "phone": "15551234567"}``, ``logout``, ``ping``,
``send_text`` (``to``, ``text``, ``reply_to``), ``stop``, and ``persisted``
(``{"id": 4, "cmd": "persisted", "delivery": 7}``: the message event numbered 7 is stored;
it has no reply).
Child -> supervisor (its private event pipe): events ``{"event": "qr", ...}`` and command
replies ``{"event": "reply", "id": 3, "ok": true, "result": "ABCD-EFGH", "error": ""}``.

Kept apart from both ends so the two sides cannot drift: ``encode_event``/``decode_event``
are the only place an EngineEvent crosses the process boundary. The child is not trusted to
speak the protocol: :func:`decode_event` checks every message against the event
dataclasses' own annotations and raises :class:`WireError` on anything else, and
:func:`read_lines` never holds more than one bounded line in memory. A WireError's text
says what was wrong and never quotes the message, which can carry a QR payload.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import types
import typing
from collections.abc import AsyncIterator
from typing import Any

from waqr.engine import protocol as p

# The longest message the child may send. Its largest real one is an incoming text: at most
# 65536 characters, JSON-escaped to at most 12 bytes each (an astral character as two \u
# escapes), so about 768 KiB; a megabyte holds it and is still a bound.
MAX_LINE = 1024 * 1024
_CHUNK = 64 * 1024

_EVENT_NAMES: dict[type[Any], str] = {
    p.QrIssued: "qr",
    p.PairSuccess: "pair_success",
    p.Connected: "connected",
    p.LoggedOut: "logged_out",
    p.TemporaryBan: "temporary_ban",
    p.ClientOutdated: "client_outdated",
    p.ConnectFailure: "connect_failure",
    p.ServerUnavailable: "server_unavailable",
    p.StreamError: "stream_error",
    p.StreamReplaced: "stream_replaced",
    p.Disconnected: "disconnected",
    p.KeepAliveTimeout: "keepalive_timeout",
    p.KeepAliveRestored: "keepalive_restored",
    p.DialFailed: "dial_failed",
    p.EngineExited: "exited",
    p.MessageReceived: "message",
    p.ReceiptReceived: "receipt",
}
_EVENT_TYPES = {name: cls for cls, name in _EVENT_NAMES.items()}


class WireError(ValueError):
    """A message from the child that breaks the protocol. The text names the fault only."""


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """The child's answer to command ``id``: ``result`` when ``ok``, else ``error``."""

    id: int
    ok: bool
    result: str | None
    error: str


@dataclasses.dataclass(frozen=True, slots=True)
class Overlong:
    """A line over the limit, already skipped; ``length`` is how much of it was seen."""

    length: int


_Schema = dict[str, tuple[type[Any], ...]]
_SCALARS: tuple[type[Any], ...] = (str, int, float, bool, type(None))


def _schema(cls: type[Any]) -> _Schema:
    """Each field's allowed JSON types, read from the dataclass annotations. A field of any
    other type fails here, at import, rather than passing unchecked at run time."""
    hints = typing.get_type_hints(cls)
    schema: _Schema = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if not all(t in _SCALARS for t in allowed):
            raise TypeError(f"{cls.__name__}.{field.name}: no wire check for {hint}")
        schema[field.name] = tuple(allowed)
    return schema


_SCHEMAS = {name: _schema(cls) for name, cls in _EVENT_TYPES.items()}
_REPLY_SCHEMA = _schema(Reply)
_IDENTIFIER = re.compile(r"[a-z_]{1,32}")


def _label(name: str) -> str:
    # A key or event name the child made up is its content: quoted only when it cannot be
    # a secret (a QR payload has '@' and ',', a phone number has digits).
    return repr(name) if _IDENTIFIER.fullmatch(name) else f"an odd name of {len(name)} chars"


def _fits(value: Any, allowed: tuple[type[Any], ...]) -> bool:
    if isinstance(value, bool):  # before int: bool is an int subclass, but no number here
        return bool in allowed
    if value is None or isinstance(value, str):
        return type(value) in allowed
    if isinstance(value, int):
        # JSON has one number type: a whole-number float may arrive as an int.
        return int in allowed or (float in allowed and abs(value) <= 2**53)
    if isinstance(value, float):
        return float in allowed and math.isfinite(value)
    return False  # a list or an object


def _check(what: str, body: dict[str, Any], schema: _Schema) -> dict[str, Any]:
    missing = [name for name in schema if name not in body]
    if missing:
        raise WireError(f"{what} lacks field {', '.join(missing)}")
    extra = [_label(name) for name in body if name not in schema]
    if extra:
        raise WireError(f"{what} has unexpected field {', '.join(extra)}")
    for name, allowed in schema.items():
        if not _fits(body[name], allowed):
            wanted = " | ".join("None" if t is type(None) else t.__name__ for t in allowed)
            got = type(body[name]).__name__
            raise WireError(f"{what} field {name} is {got}, expected {wanted}")
    return {
        name: float(body[name]) if int not in allowed and type(body[name]) is int else body[name]
        for name, allowed in schema.items()
    }


def _no_constants(token: str) -> Any:
    raise WireError(f"message carries a non-JSON number {token}")


def decode_event(line: bytes) -> p.EngineEvent | Reply:
    """The event or command reply in ``line``; raises WireError on anything else."""
    try:
        body = json.loads(line, parse_constant=_no_constants)
    except WireError:
        raise
    except (ValueError, RecursionError) as exc:
        raise WireError(f"message is not JSON ({len(line)} bytes)") from exc
    if not isinstance(body, dict):
        raise WireError(f"message is a JSON {type(body).__name__}, not an object")
    name = body.pop("event", None)
    if not isinstance(name, str):
        raise WireError("message has no event name")
    if name == "reply":
        return Reply(**_check("reply", body, _REPLY_SCHEMA))
    cls = _EVENT_TYPES.get(name)
    if cls is None:
        raise WireError(f"unknown event {_label(name)}")
    event: p.EngineEvent = cls(**_check(f"event {name}", body, _SCHEMAS[name]))
    return event


async def read_lines(stream: asyncio.StreamReader, limit: int) -> AsyncIterator[bytes | Overlong]:
    """The lines of ``stream`` (newline included) until EOF. A line longer than ``limit`` is
    reported as :class:`Overlong` as soon as it passes the limit and its rest is skipped, so
    memory stays bounded whatever the other end writes. (``StreamReader.readline`` raises
    on such a line and leaves its tail to be read as the next line.)"""
    pending = bytearray()
    skipping = False
    while chunk := await stream.read(_CHUNK):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            piece = chunk[start : end + 1]
            start = end + 1
            if skipping:
                skipping = False
            elif len(pending) + len(piece) > limit:
                yield Overlong(len(pending) + len(piece))
                pending.clear()
            else:
                pending += piece
                yield bytes(pending)
                pending.clear()
        if not skipping:
            pending += chunk[start:]
            if len(pending) > limit:
                yield Overlong(len(pending))
                pending.clear()
                skipping = True
    if pending:
        yield bytes(pending)  # a last line without its newline


def encode_event(event: p.EngineEvent) -> bytes:
    body = {"event": _EVENT_NAMES[type(event)], **dataclasses.asdict(event)}
    return json.dumps(body).encode() + b"\n"


def encode_reply(command_id: int, *, ok: bool, result: str | None = None, error: str = "") -> bytes:
    body = {"event": "reply", "id": command_id, "ok": ok, "result": result, "error": error}
    return json.dumps(body).encode() + b"\n"


def encode_command(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode() + b"\n"
