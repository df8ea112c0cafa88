"""The OpenAPI document's account of what each route answers (/docs): an example body for
every success, and every error status a route can give, each with its ``{"error", "detail"}``
example. The helpers compose them: ``ok(...)`` for a JSON route that asks the bot,
``image(...)`` for a rendered QR, ``sse()`` for the event stream, ``text(...)`` for metrics.
"""

from __future__ import annotations

from typing import Any

from waqr.api_models import ErrorTable, error_responses

STATUS: dict[str, Any] = {
    "session": "default",
    "connected": False,
    "status": "qr_ready",
    "since": "2026-11-24T19:07:52.425Z",
    "lastDisconnectReason": {
        "code": "logged_out",
        "message": "WhatsApp logged this device out (it was removed from Linked devices).",
        "hint": "Scan the new QR code, or link with a phone number, to link again.",
    },
    "account": None,
    "hasCredentials": False,
    "qr": {"available": True, "expiresIn": 41.2},
    "retrying": False,
    "nextRetryAt": None,
    "cache": "ok",
    "bridge": {"pushConnected": True, "keepalive": {"leader": True, "lock": "held"}},
}
DIAGNOSE: dict[str, Any] = {
    "healthy": False,
    "target": "web.whatsapp.com:443",
    "via": None,
    "verdict": {
        "layer": "noise",
        "outcome": "failed",
        "detail": "the server closed the connection right after ClientHello, with every layer "
        "below healthy: this is how WhatsApp refuses an IP range it blocks",
        "elapsedMs": 41.0,
        "cause": "noise_refused",
        "fixes": [
            "set WA_PROXY to a proxy on a network WhatsApp accepts",
            "run the bot on another host (a residential or business connection)",
        ],
    },
    "steps": [
        {"layer": "config", "outcome": "ok", "detail": "no WA_PROXY; ...", "elapsedMs": 3.1},
        {"layer": "dns", "outcome": "ok", "detail": "web.whatsapp.com -> ...", "elapsedMs": 12.0},
        {"layer": "tcp", "outcome": "ok", "detail": "connected to ...:443", "elapsedMs": 20.4},
    ],
}
QR: dict[str, Any] = {
    "status": "qr_ready",
    "qr": "https://wa.me/settings/linked_devices#2@AbC...,base64...,base64...,base64...,6",
    "expires_in": 41.2,
    "source": "bot",
}
RECONNECT: dict[str, Any] = {
    "accepted": True,
    "coalesced": False,
    "reset": False,
    "status": "connecting",
}
LOGOUT: dict[str, Any] = {"loggedOut": True, "unlinkedAtWhatsApp": True, "status": "logged_out"}
PAIR_CODE: dict[str, Any] = {
    "code": "ABCD-EFGH",
    "phone": "+49*********78",
    "status": "pairing_code",
}
MESSAGE: dict[str, Any] = {
    "id": "msg_6f1c2a0e9b7d4c3f8a1e5d2b0c9f7a6e",
    "to": "4915112345678@s.whatsapp.net",
    "status": "sent",
    "waMessageId": "3EB0A46BDBB540B1C2D3",
    "receipt": "delivered",
    "error": None,
    "createdAt": 1764190000.0,
    "updatedAt": 1764190001.5,
}
INBOX: dict[str, Any] = {
    "messages": [
        {
            "seq": 41,
            "id": "3EB0C1D2E3F4A5B6C7D8",
            "chat": "4915112345678@s.whatsapp.net",
            "sender": "4915112345678@s.whatsapp.net",
            "pushName": "Ada",
            "text": "Is my order on its way?",
            "timestamp": 1764190100.0,
            "quotedId": None,
            "fromMe": False,
        }
    ]
}
FAILED_WEBHOOKS: dict[str, Any] = {
    "failed": [
        {
            "eventId": "evt_3f0c9b1e2d4a4c6b8e7f0a1b2c3d4e5f",
            "url": "https://hooks.example.com/waqr",
            "attempts": 14,
            "lastError": "answered 503",
            "createdAt": 1764190000.0,
            "type": "message",
        }
    ]
}

# Every error status a bridge route may answer: why, and an example body.
ERRORS: ErrorTable = {
    400: (
        "The request body could not be parsed.",
        {"error": "bad_request", "detail": "There was an error parsing the body"},
    ),
    401: (
        "Missing or wrong credential.",
        {"error": "unauthorized", "detail": "missing credential"},
    ),
    404: (
        "There is no live QR code right now (`status` says why).",
        {
            "error": "no_qr",
            "detail": "no QR code is available (qr_timeout)",
            "status": "qr_timeout",
        },
    ),
    403: (
        "The credential may not do this (the API key cannot wipe credentials).",
        {
            "error": "forbidden",
            "detail": "the API key may reconnect but not wipe credentials; "
            "use the admin token for a relink",
        },
    ),
    409: (
        "Not possible in the session's current state (linked already, or busy); try again.",
        {"error": "conflict", "detail": "cannot pair now: the session is connected; try again"},
    ),
    422: (
        "The request is malformed; `detail` names the field and the problem.",
        {
            "error": "invalid_request",
            "detail": "phone: phone number must start with '+' and the country code, "
            "e.g. +4915112345678",
        },
    ),
    413: (
        "The request body is larger than WAQR_MAX_BODY_BYTES.",
        {
            "error": "payload_too_large",
            "detail": "the request body is larger than 16384 bytes (WAQR_MAX_BODY_BYTES)",
        },
    ),
    429: (
        "Too many failed authentications from this client, or (sending) more than "
        "WAQR_SEND_RATE_LIMIT sends a minute; wait `Retry-After` seconds.",
        {"error": "too_many_failures", "detail": "too many failed authentications; retry in 42 s"},
    ),
    502: (
        "The bot refused this bridge's WAQR_BOT_TOKEN (`bot_token_refused`: set the same token "
        "on both), or TLS with the bot failed (`bot_tls_failed`: its certificate is not "
        "signed by WAQR_BOT_CA_FILE or names another host).",
        {
            "error": "bot_token_refused",
            "detail": "the bot refused this bridge's WAQR_BOT_TOKEN; set the same token on "
            "the bot and the bridge",
        },
    ),
    503: (
        "The bot cannot be reached, or its session or engine cannot serve the request now.",
        {"error": "bot_unreachable", "detail": "the bot cannot be reached (ConnectError)"},
    ),
    504: (
        "The bot did not answer in time (WAQR_BOT_TIMEOUT; WAQR_BOT_PAIR_TIMEOUT and "
        "WAQR_BOT_LOGOUT_TIMEOUT for those two calls).",
        {"error": "bot_timeout", "detail": "the bot did not answer /status within 10 s"},
    ),
}
# Every route behind a credential: the gate (waqr.bridge.gate) answers these before the route.
AUTH = (401, 413, 429)
BOT = (502, 503, 504)  # every route that asks the bot


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return error_responses(ERRORS, *statuses)


def ok(
    example: dict[str, Any], status: int = 200, *, also: tuple[int, ...] = ()
) -> dict[int | str, dict[str, Any]]:
    """A JSON route behind a credential that asks the bot; ``also``: its own extra errors."""
    return {
        status: {"content": {"application/json": {"example": example}}},
        **errors(*AUTH, *BOT, *also),
    }


def public(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """An open JSON route that asks nobody (the body cap holds here too)."""
    return {200: {"content": {"application/json": {"example": example}}}, **errors(413)}


def image(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {"example": "(binary)"}}},
        **errors(*AUTH, *BOT, 404, 409),
    }


def text(example: str) -> dict[int | str, dict[str, Any]]:
    """A plain-text route behind a credential that asks nobody."""
    return {200: {"content": {"text/plain": {"example": example}}}, **errors(*AUTH)}


def sse() -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {
                "text/event-stream": {
                    "example": (
                        'event: qr\ndata: {"status": "qr_ready", "qr": "...", "expires_in": 20}\n'
                    )
                }
            }
        },
        **errors(*AUTH, *BOT),
    }
