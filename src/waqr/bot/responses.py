"""The bot's OpenAPI account of what each route answers: every error status a route can give,
with the ``{"error", "detail"}`` body waqr.http_errors really sends. The bridge keeps its own
(waqr.bridge.examples); the table's helper is shared (waqr.api_models.error_responses)."""

from __future__ import annotations

from typing import Any

from waqr.api_models import ErrorTable, error_responses

ERRORS: ErrorTable = {
    400: (
        "The request body could not be parsed.",
        {"error": "bad_request", "detail": "There was an error parsing the body"},
    ),
    401: (
        "WAQR_BOT_TOKEN is set and the request does not carry it as a Bearer token.",
        {"error": "unauthorized", "detail": "missing bot token"},
    ),
    404: (
        "There is no live QR code right now (`status` says why).",
        {
            "error": "no_qr",
            "detail": "no QR code is available (qr_timeout)",
            "status": "qr_timeout",
        },
    ),
    409: (
        "Not possible in the session's current state (linked already, or busy); try again.",
        {"error": "conflict", "detail": "the session is already linked; log out first"},
    ),
    422: (
        "The request is malformed; `detail` names the field and the problem.",
        {"error": "invalid_request", "detail": "reset: Input should be a valid boolean"},
    ),
    429: (
        "Too many sends: WAQR_SEND_RATE_LIMIT a minute. `Retry-After` says when to retry.",
        {"error": "rate_limited", "detail": "at most 20 sends a minute; retry in 12 s"},
    ),
    503: (
        "The session cannot serve the request now (stopping, or its actor is wedged), or the "
        "engine failed the command.",
        {"error": "session_unavailable", "detail": "the session is not running"},
    ),
}
HEALTH_503: dict[str, Any] = {
    "description": "A session is wedged; restart the process.",
    "model": None,
    "content": {
        "application/json": {
            "example": {
                "status": "unhealthy",
                "error": "session_unhealthy",
                "detail": "session default: the actor missed its deadline",
            }
        }
    },
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``statuses`` plus 401: every route but /health is behind the bot token when it is set."""
    return error_responses(ERRORS, 401, *statuses)


def image(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media_type: {"example": "(binary)"}}}, **errors(404, 409)}


def sse() -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {
                "text/event-stream": {"example": 'event: state\ndata: {"status": "qr_ready"}\n'}
            }
        },
        **errors(),
    }
