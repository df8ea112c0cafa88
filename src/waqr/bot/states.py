"""Session states: part of the API (``GET /status`` -> ``status``)."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    STARTING = "starting"  # the service is up, no engine yet
    CONNECTING = "connecting"  # an engine is dialling / logging in
    QR_READY = "qr_ready"  # a QR is on offer (GET /qr)
    PAIRING_CODE = "pairing_code"  # a pairing code is on offer (POST /pair-code)
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # lost or failed to connect; retrying by itself
    LOGGED_OUT = "logged_out"  # credentials gone; a fresh link is being offered
    QR_TIMEOUT = "qr_timeout"  # QR batches ran out unscanned; resting until asked again
    FAILED = "failed"  # needs action (banned, client outdated, replaced, ...)


# States in which the engine waits to be linked (QR or pairing code).
LINKING = frozenset({State.QR_READY, State.PAIRING_CODE})
# States in which the session rests and only a request wakes it.
RESTING = frozenset({State.QR_TIMEOUT, State.FAILED})


# GET /qr's status when no QR is live: a QR may still come ("not_ready", also between an
# expired code and the next one, or "connecting"), or the session's own state says why there
# is none (connected, qr_timeout, failed).
_NO_QR_STATUS: dict[str, str] = {
    State.STARTING: "not_ready",
    State.DISCONNECTED: "not_ready",
    State.LOGGED_OUT: "not_ready",
    State.QR_READY: "not_ready",
    State.PAIRING_CODE: "not_ready",
    State.CONNECTING: "connecting",
}


def no_qr_answer(state: str) -> dict[str, str | None]:
    """``GET /qr``'s body when no code is live in ``state``: the bot's answer, and the
    bridge's from what the bot pushed (one definition for both)."""
    # A StrEnum member is its string: the table is read by the state's name as it comes.
    return {"status": _NO_QR_STATUS.get(state, state), "qr": None, "expires_in": None}
