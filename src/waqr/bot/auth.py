"""The bot's own credential, for a bot that lives on another host (README, "Bot on another
host"). Pure ASGI, so a request without the token is refused before any body is read. Only
``/health`` stays open: an orchestrator's liveness probe carries no secret."""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/health"})


class BotTokenAuth:
    def __init__(self, app: ASGIApp, tokens: list[str]) -> None:
        self.app = app
        # Several may be valid at once, so the token can be rotated without downtime.
        self.expected = [f"Bearer {token}".encode() for token in tokens]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]  # "lifespan" carries no request
        if kind not in ("http", "websocket") or (kind == "http" and scope["path"] in OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        presented = dict(scope["headers"]).get(b"authorization", b"")
        valid = False
        for expected in self.expected:  # no early exit: every token is compared every time
            valid |= hmac.compare_digest(presented, expected)
        if valid:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # The bot has no WebSocket route today; one added later is guarded all the same.
            # Closing before the handshake is accepted: 1008, policy violation (RFC 6455 7.4.1).
            await send({"type": "websocket.close", "code": 1008})
            return
        detail = "missing bot token" if not presented else "invalid bot token"
        body = json.dumps({"error": "unauthorized", "detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="waqr-bot"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
