"""Example bodies for the OpenAPI document (/docs): one for every route."""

from __future__ import annotations

from typing import Any

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
    "cache": "ok",
    "bridge": {"pushConnected": True, "keepalive": {"leader": True}},
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
ERROR: dict[str, Any] = {"error": "unauthorized", "detail": "missing credential"}


def ok(example: dict[str, Any], status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"content": {"application/json": {"example": example}}},
        401: {"content": {"application/json": {"example": ERROR}}},
        503: {
            "content": {
                "application/json": {
                    "example": {"error": "bot_unreachable", "detail": "the bot cannot be reached"}
                }
            }
        },
    }


def image(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {"example": "(binary)"}}},
        404: {"content": {"application/json": {"example": {"error": "no_qr", "detail": "..."}}}},
    }


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
        }
    }
