"""``waqr send +E.164 "text"``: send a text through the bridge, and with ``--wait`` follow it
until WhatsApp reports it delivered (or read). Prints the message id; never the text."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TextIO

from waqr.terminal import Exit

if TYPE_CHECKING:
    from waqr.ui.client import BridgeClient

POLL_INTERVAL = 1.0
# Where --wait stops: the message reached the phone, or it will not.
_ARRIVED = frozenset({"delivered", "read", "played"})


def run_send(
    client: BridgeClient,
    out: TextIO,
    err: TextIO,
    *,
    to: str,
    text: str,
    reply_to: str | None,
    idempotency_key: str | None,
    wait: float | None,
) -> int:
    from waqr.ui.client import UiError

    try:
        accepted = client.send_message(to, text, reply_to=reply_to, idempotency_key=idempotency_key)
    except UiError as error:
        if error.kind != "rejected":
            raise
        err.write(f"waqr: not sent: {error.message}\n")
        return Exit.NOT_CONNECTED
    message_id = str(accepted["id"])
    out.write(f"accepted {message_id} for {accepted['to']}\n")
    if wait is None:
        return Exit.OK
    deadline = time.monotonic() + wait
    last: dict[str, Any] = accepted
    while time.monotonic() < deadline:
        last = client.message(message_id)
        if last.get("status") == "failed":
            err.write(f"waqr: sending failed: {last.get('error') or 'unknown error'}\n")
            return Exit.NOT_CONNECTED
        if last.get("receipt") in _ARRIVED:
            out.write(f"{last['receipt']} ({last.get('waMessageId')})\n")
            return Exit.OK
        time.sleep(POLL_INTERVAL)
    err.write(
        f"waqr: not delivered within {wait:g} s (now {last.get('receipt') or last.get('status')})\n"
    )
    return Exit.NOT_CONNECTED
