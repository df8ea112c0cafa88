"""The UI's client for the bridge: every failure becomes a plain-words ``UiError``, never a
traceback on the page. The token travels only in the Authorization header."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import connect_sse


@dataclass(frozen=True)
class UiError(Exception):
    kind: str  # bridge_unreachable | bad_token | throttled | bot_down | bot_slow | rejected
    message: str

    def __str__(self) -> str:
        return self.message


# Past the bridge's own defaults for these calls (WAQR_BOT_PAIR_TIMEOUT 90 s,
# WAQR_BOT_LOGOUT_TIMEOUT 60 s), so the page never gives up on work the bot completes.
PAIR_CODE_TIMEOUT = 100.0
LOGOUT_TIMEOUT = 70.0
# Four of the bridge's 15 s pings may go missing before the push stream counts as dead.
EVENTS_READ_TIMEOUT = 60.0


class BridgeClient:
    def __init__(self, api_url: str, token: str, *, timeout: float = 8.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with self._mapped_transport_errors():
            response = self._http.request(method, path, **kwargs)
        return self._check(response)

    @contextlib.contextmanager
    def _mapped_transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException:
            raise UiError(
                "bridge_unreachable", f"The waqr bridge at {self.api_url} did not answer in time."
            ) from None
        except httpx.TransportError:
            raise UiError(
                "bridge_unreachable",
                f"Cannot reach the waqr bridge at {self.api_url}. Is `waqr api` running, and is "
                "WA_QR_API_URL right?",
            ) from None

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        """The reply's JSON body, or the UiError that says in plain words what went wrong."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code < 400:
            return body
        detail = str(body.get("detail") or "")
        error = body.get("error")
        if response.status_code == 401:
            raise UiError("bad_token", "The bridge rejected the token. Check WA_QR_BRIDGE_TOKEN.")
        if response.status_code == 429 and error == "rate_limited":
            raise UiError("rejected", detail)  # the bot's send rate limit
        if response.status_code == 429:
            raise UiError("throttled", f"Too many failed attempts. {detail}")
        if error == "bot_unreachable":
            raise UiError(
                "bot_down", "The bridge is up, but the WhatsApp bot is not running (waqr bot)."
            )
        if error == "bot_timeout":
            raise UiError("bot_slow", "The WhatsApp bot is not answering in time; try again.")
        raise UiError("rejected", detail or f"The bridge answered {response.status_code}.")

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The bridge's push stream (``GET /admin/wa/events``) as ``(type, data)`` pairs,
        starting with a ``state`` snapshot, until the stream ends. The bridge pings every 15 s,
        so a read that waits longer than EVENTS_READ_TIMEOUT means the stream is dead."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=EVENTS_READ_TIMEOUT)
        with (
            self._mapped_transport_errors(),
            connect_sse(self._http, "GET", "/admin/wa/events", timeout=timeout) as source,
        ):
            if source.response.status_code >= 400:
                source.response.read()
                self._check(source.response)
            for sse in source.iter_sse():
                if sse.event in ("state", "qr"):
                    yield sse.event, json.loads(sse.data)

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/admin/wa/status")

    def qr(self) -> dict[str, Any]:
        return self._call("GET", "/admin/wa/qr")

    def reconnect(self, *, reset: bool = False) -> dict[str, Any]:
        return self._call("POST", "/admin/wa/reconnect", params={"reset": str(reset).lower()})

    def logout(self) -> dict[str, Any]:
        return self._call("POST", "/admin/wa/logout", timeout=LOGOUT_TIMEOUT)

    def send_message(
        self, to: str, text: str, *, reply_to: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = {"to": to, "text": text, "reply_to": reply_to}
        return self._call("POST", "/admin/wa/messages", json=body, headers=headers)

    def message(self, message_id: str) -> dict[str, Any]:
        return self._call("GET", f"/admin/wa/messages/{quote(message_id, safe='')}")

    def pair_code(self, phone: str) -> dict[str, Any]:
        return self._call(
            "POST", "/admin/wa/pair-code", json={"phone": phone}, timeout=PAIR_CODE_TIMEOUT
        )
