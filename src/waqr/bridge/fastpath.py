"""The read routes' fast path: ``GET /admin/wa/qr`` and ``/admin/wa/status`` (and their
``/wa/*`` aliases) answered from what the bot pushed, as a pure ASGI middleware.

These two are what every client polls, and while the bot's event stream is up their answer
is a dictionary the relay already holds. Under wrk (50 connections) py-spy put producing it at
about 3 % of the bridge's samples and FastAPI's way to it (exception and exit-stack
middleware, routing, dependency solving, encoding) at about 20 %: enough for the bridge to
serve fewer requests than the bot it fronts. So this middleware,
which sits inside the gate (credentials already checked, the client address settled) and
inside CORS and the request metrics (both still apply), answers them itself. When there is no
pushed answer (the stream is down), the request goes on to the routes as before, which ask the
bot. The routes stay the reference: same body, same ``application/json`` encoding as
FastAPI's ``JSONResponse``, and they are what the OpenAPI document describes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

Answer = Callable[[], Awaitable[dict[str, Any] | None]]


def encode(body: dict[str, Any]) -> bytes:
    """What FastAPI's JSONResponse would send for ``body``."""
    return json.dumps(
        body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


class PushedAnswers:
    """Answer ``GET <path>`` with ``answers[path]()`` when that is not None."""

    def __init__(self, app: ASGIApp, *, answers: Mapping[str, Answer]) -> None:
        self.app = app
        self.answers = dict(answers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            answer = self.answers.get(scope["path"])
            if answer is not None and (body := await answer()) is not None:
                content = encode(body)
                headers = [
                    (b"content-length", b"%d" % len(content)),
                    (b"content-type", b"application/json"),
                ]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": content})
                return
        await self.app(scope, receive, send)
