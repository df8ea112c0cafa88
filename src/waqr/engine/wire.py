"""The pipe protocol between the supervisor and the engine child: JSON lines.

Supervisor -> child (stdin): first a config line, then commands
``{"id": 3, "cmd": "pair_phone", "phone": "15551234567"}``, ``logout``, ``stop``.
Child -> supervisor (its private event pipe): events ``{"event": "qr", ...}`` and command
replies ``{"event": "reply", "id": 3, "ok": true, "result": "ABCD-EFGH"}``.

Kept apart from both ends so the two sides cannot drift: ``encode_event``/``decode_event``
are the only place an EngineEvent crosses the process boundary.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from waqr.engine import protocol as p

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
}
_EVENT_TYPES = {name: cls for cls, name in _EVENT_NAMES.items()}


def encode_event(event: p.EngineEvent) -> bytes:
    body = {"event": _EVENT_NAMES[type(event)], **dataclasses.asdict(event)}
    return json.dumps(body).encode() + b"\n"


def encode_reply(command_id: int, *, ok: bool, result: Any = None, error: str = "") -> bytes:
    body = {"event": "reply", "id": command_id, "ok": ok, "result": result, "error": error}
    return json.dumps(body).encode() + b"\n"


def decode_event(line: bytes) -> p.EngineEvent | dict[str, Any]:
    """An EngineEvent, or the raw dict of a command reply. Raises ValueError on garbage."""
    body = json.loads(line)
    if not isinstance(body, dict) or "event" not in body:
        raise ValueError("not an engine message")
    name = body.pop("event")
    if name == "reply":
        return dict(body)
    cls = _EVENT_TYPES.get(name)
    if cls is None:
        raise ValueError(f"unknown engine event {name!r}")
    event: p.EngineEvent = cls(**body)
    return event


def encode_command(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode() + b"\n"
