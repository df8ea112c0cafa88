"""The bridge's front gate, a pure ASGI middleware in front of every route. In order:

1. It settles who the client is (``waqr.bridge.clientaddr``) and writes it into the scope, so
   the limiter, the audit log and the access log all see the same address.
2. On a guarded path (``/admin/*`` and ``/metrics`` take the Bearer token, ``/wa/*`` the API
   key) it authenticates, before a single byte of the body is read: a caller without a
   credential gets 401 (429 past the failure limit) for a 150 MB upload as quickly as for a
   GET, and a malformed body never reaches the JSON parser (no 422 to learn from).
3. It caps the body at ``WAQR_MAX_BODY_BYTES``: a larger Content-Length is refused at once,
   and a chunked body is counted as it streams in and cut off when it grows past the cap.
   Nothing is buffered here.

Every refusal is ``{"error", "detail"}`` JSON, like the rest of the API.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waqr.bridge.auth import API_KEY, BEARER, AuthRefused, Scheme, authenticate
from waqr.bridge.clientaddr import TrustedProxies
from waqr.http_errors import error_body


def scheme_for(path: str) -> Scheme | None:
    """The credential a path needs; None for the open ones (/healthz, /docs, /openapi.json)."""
    if path.startswith("/admin/") or path == "/metrics":
        return BEARER
    if path.startswith("/wa/"):
        return API_KEY
    return None


def presented(scheme: Scheme, headers: Headers) -> str | None:
    """The credential as the route dependencies read it (FastAPI's HTTPBearer, APIKeyHeader)."""
    if scheme is API_KEY:
        return headers.get("x-api-key") or None
    kind, credential = get_authorization_scheme_param(headers.get("authorization"))
    return credential if kind.lower() == "bearer" and credential else None


async def answer(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    content = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    # The body is left unread, so the connection cannot carry another request.
    raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


def too_large(limit: int) -> dict[str, Any]:
    return error_body(
        "payload_too_large", f"the request body is larger than {limit} bytes (WAQR_MAX_BODY_BYTES)"
    )


class Gate:
    def __init__(self, app: ASGIApp, *, trusted_proxies: str, max_body_bytes: int) -> None:
        self.app = app
        self.proxies = TrustedProxies(trusted_proxies)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        peer = scope.get("client") or ("unknown", 0)
        client = self.proxies.client_of(peer[0], headers.getlist("x-forwarded-for"))
        if client != peer[0]:
            scope["client"] = (client, 0)
        scheme = scheme_for(scope["path"])
        if scheme is not None:
            try:
                credential = presented(scheme, headers)
                caller = authenticate(scope["app"].state, scheme, credential, client)
            except AuthRefused as refused:
                await answer(send, refused.status, refused.body, refused.headers)
                return
            scope.setdefault("state", {})["caller"] = caller
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await answer(send, 413, too_large(self.max_body_bytes))
            return
        await self._capped(scope, receive, send)

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a receive that counts the body; past the cap the app hears that
        the client went away, the client hears 413, and whatever the app answers to that is
        dropped."""
        received = 0
        cut_off = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, cut_off
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    cut_off = True
                    if not started:
                        await answer(send, 413, too_large(self.max_body_bytes))
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut_off:
                return
            started = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)
