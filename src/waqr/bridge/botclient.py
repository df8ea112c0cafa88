"""The bridge's one way to talk to the bot. ``_check`` is the single place where an HTTP
outcome becomes a result or a typed error (BotUnreachable -> 503, BotTlsFailed -> 502,
BotTimeout -> 504, BotRejected -> the bot's own status and body).

Every call is bounded by WAQR_BOT_TIMEOUT except the two the bot itself may legitimately
spend long on: /pair-code (WAQR_BOT_PAIR_TIMEOUT) and /logout (WAQR_BOT_LOGOUT_TIMEOUT).
Giving up before the bot does would answer 504 while the bot carries on regardless.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import aconnect_sse

from waqr.errors import BotRejected, BotTimeout, BotTlsFailed, BotUnreachable


def bot_tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """How the bridge checks an https bot: against ``ca_file`` (WAQR_BOT_CA_FILE) when given,
    else the system's trusted CAs; host name checked either way."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    # httpx wraps the ssl module's error in ConnectError; the reason is down the chain.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@asynccontextmanager
async def _mapped_errors(path: str, limit: str = "in time") -> AsyncIterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise BotTimeout(f"the bot did not answer {path} {limit}") from exc
    except httpx.TransportError as exc:
        tls = _tls_failure(exc)
        if tls is not None:
            reason = getattr(tls, "verify_message", None) or tls.reason or type(tls).__name__
            raise BotTlsFailed(
                f"TLS with the bot failed ({reason}); check that BOT_URL names the host in "
                "the bot's certificate and that WAQR_BOT_CA_FILE holds the CA that signed it"
            ) from exc
        raise BotUnreachable(f"the bot cannot be reached ({type(exc).__name__})") from exc


class BotClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        pair_timeout: float | None = None,
        logout_timeout: float | None = None,
        diagnose_timeout: float | None = None,
        token: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        """``timeout`` bounds every call; ``pair_timeout`` and ``logout_timeout`` (default:
        ``timeout``) replace it for waiting on the answer to /pair-code and /logout."""
        self.base_url = base_url
        self.timeout = timeout
        self.pair_timeout = timeout if pair_timeout is None else pair_timeout
        self.logout_timeout = timeout if logout_timeout is None else logout_timeout
        self.diagnose_timeout = timeout if diagnose_timeout is None else diagnose_timeout
        # WAQR_BOT_TOKEN, for a bot that requires it (a bot on another host).
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=headers, verify=bot_tls_context(ca_file)
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, *, wait: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One call. ``wait`` lengthens only the wait for the answer (httpx's read timeout);
        connecting and sending stay bounded by ``timeout``: a bot that cannot take the
        request at once is not busy working on it."""
        wait = self.timeout if wait is None else wait
        limit = httpx.Timeout(self.timeout, read=wait)
        async with _mapped_errors(path, f"within {wait:g} s"):
            response = await self._http.request(method, path, timeout=limit, **kwargs)
        return self._check(response)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        if response.status_code == 401:
            # The bot refused the bridge, not the caller: passing 401 on would tell the caller
            # its own credential is wrong.
            raise BotRejected(
                502,
                {
                    "error": "bot_token_refused",
                    "detail": "the bot refused this bridge's WAQR_BOT_TOKEN; set the same "
                    "token on the bot and the bridge",
                },
            )
        try:
            body = response.json()
        except ValueError:
            body = {"error": "bot_error", "detail": response.text[:200]}
        if not isinstance(body, dict):
            body = {"error": "bot_error", "detail": str(body)[:200]}
        raise BotRejected(response.status_code, body)

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = (await self._request(method, path, **kwargs)).json()
        return body

    async def health(self) -> dict[str, Any]:
        return await self._json("GET", "/health")

    async def status(self) -> dict[str, Any]:
        return await self._json("GET", "/status")

    async def qr(self, *, peek: bool = False) -> dict[str, Any]:
        """The bot's current QR. ``peek`` reads it without counting as a person waiting (the
        keepalive loop must not keep QR batches coming on its own)."""
        return await self._json("GET", "/qr", params={"peek": "true"} if peek else None)

    async def reconnect(self, *, reset: bool = False) -> dict[str, Any]:
        return await self._json("POST", "/reconnect", params={"reset": str(reset).lower()})

    async def logout(self) -> dict[str, Any]:
        return await self._json("POST", "/logout", wait=self.logout_timeout)

    async def diagnose(self) -> dict[str, Any]:
        return await self._json("GET", "/diagnose", wait=self.diagnose_timeout)

    async def pair_code(self, phone: str) -> dict[str, Any]:
        return await self._json("POST", "/pair-code", json={"phone": phone}, wait=self.pair_timeout)

    async def send_message(
        self, body: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        return await self._json("POST", "/messages", json=body, headers=headers)

    async def message(self, message_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/messages/{quote(message_id, safe='')}")

    async def inbox(self, after: int, limit: int) -> dict[str, Any]:
        """Incoming messages after the ``seq`` given, oldest first (the bot's GET /messages)."""
        return await self._json(
            "GET", "/messages", params={"direction": "in", "after": after, "limit": limit}
        )

    async def failed_webhooks(self) -> dict[str, Any]:
        return await self._json("GET", "/webhooks/failed")

    async def replay_webhooks(self) -> dict[str, Any]:
        return await self._json("POST", "/webhooks/failed/replay")

    async def events(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The bot's event stream, as (type, data) pairs, until it ends."""
        async with (
            _mapped_errors("/events"),
            aconnect_sse(
                # The bot pings every 15 s: two missed pings end a stalled stream, and the
                # bridge stops answering from what it said.
                self._http,
                "GET",
                "/events",
                timeout=httpx.Timeout(10, read=35),
            ) as source,
        ):
            self._check(source.response)
            async for sse in source.aiter_sse():
                if sse.event in ("state", "qr", "message", "receipt"):
                    yield sse.event, json.loads(sse.data)
