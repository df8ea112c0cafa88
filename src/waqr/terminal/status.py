"""``waqr status``: the session's state in words (or the bridge's JSON), and an exit code a
script can test: 0 connected, 1 not connected, 2 could not ask."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TextIO

from waqr.terminal import Exit
from waqr.terminal.link import account_name, reason_lines
from waqr.ui.client import BridgeClient, UiError
from waqr.ui.view import BADGES, UNSTABLE

# Errors after which the state is known well enough: the bot that holds the link is down.
NOT_CONNECTED_KINDS = frozenset({"bot_down"})


def _when(iso: str | None, now: datetime) -> str:
    """``2026-11-24T19:07:52.425Z`` -> ``2026-11-24 19:07:52 UTC (3 min ago)`` (or ``in 3 min``
    for a moment still to come)."""
    if not iso:
        return "unknown"
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    offset = int((now - at).total_seconds())
    span = _span(abs(offset))
    relative = f"in {span}" if offset < 0 else f"{span} ago"
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({relative})"


def _span(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def describe(status: dict[str, Any], api_url: str, now: datetime | None = None) -> list[str]:
    """The status in plain words, one fact a line."""
    now = now or datetime.now(UTC)
    state = str(status.get("status"))
    label = BADGES.get(state, (state, ""))[0]
    if state == "connected" and status.get("keepaliveFailing"):
        label = UNSTABLE[0]
    lines = [f"WhatsApp:  {label} [{state}]", f"Since:     {_when(status.get('since'), now)}"]
    reason = status.get("lastDisconnectReason") or {}
    if state == "connected":
        lines.append(f"Account:   {account_name(status)}")
        if reason.get("message"):
            at = _when(status.get("lastDisconnectAt"), now)
            lines.append(f"Last drop: {reason['message']} ({at})")
    elif reason:
        lines.extend(reason_lines(reason))
        detail = f" ({reason['detail']})" if reason.get("detail") else ""
        lines.append(f"Code:      {reason.get('code')}{detail}")
    qr = status.get("qr") or {}
    if qr.get("available"):
        left = int(float(qr.get("expiresIn") or 0) + 0.5)
        lines.append(f"QR code:   on offer, {left} s left; `waqr link` shows it")
    pairing = status.get("pairingCode") or {}
    if pairing:
        lines.append(f"Pairing:   a code for {pairing.get('phone')} awaits entry on the phone")
    if status.get("retrying"):
        lines.append(f"Retrying:  next attempt {_when(status.get('nextRetryAt'), now)}")
    bridge = status.get("bridge") or {}
    push = "following the bot" if bridge.get("pushConnected") else "not hearing from the bot"
    lines.append(f"Bridge:    {api_url} ({push}; cache {status.get('cache', 'unknown')})")
    return lines


def run_status(client: BridgeClient, out: TextIO, err: TextIO, *, as_json: bool) -> Exit:
    try:
        status = client.status()
    except UiError as error:
        code = Exit.NOT_CONNECTED if error.kind in NOT_CONNECTED_KINDS else Exit.CANNOT_ASK
        if as_json:
            out.write(json.dumps({"error": error.kind, "detail": error.message}) + "\n")
        else:
            err.write(f"waqr: {error.message}\n")
        return code
    if as_json:
        out.write(json.dumps(status, indent=2) + "\n")
    else:
        out.write("".join(line + "\n" for line in describe(status, client.api_url)))
    return Exit.OK if status.get("status") == "connected" else Exit.NOT_CONNECTED
