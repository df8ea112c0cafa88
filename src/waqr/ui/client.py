"""The UI's client for the bridge: every failure becomes a plain-words ``UiError``, never a
traceback on the page. The token travels only in the Authorization header; the signed-in
user's name travels in ``X-Waqr-User`` so the bridge's audit log can name them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import connect_sse

from waqr.ui.view import safe_url

USER_HEADER = "X-Waqr-User"


class UiError(Exception):
    """A failure in plain words. Not a frozen dataclass: ``contextlib`` and ``raise`` set
    ``__traceback__`` on it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        # bridge_unreachable | bad_token | throttled | bot_down | bot_slow | rejected
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


# Past the bridge's own defaults for these calls (WAQR_BOT_PAIR_TIMEOUT 90 s,
# WAQR_BOT_LOGOUT_TIMEOUT 60 s), so the page never gives up on work the bot completes.
PAIR_CODE_TIMEOUT = 100.0
LOGOUT_TIMEOUT = 70.0
# Past the bridge's own wait for the bot's doctor (6 steps of WAQR_DOCTOR_TIMEOUT 10 s, the
# Noise step's 20 s, and 5 s).
DIAGNOSE_TIMEOUT = 95.0
# Four of the bridge's 15 s pings may go missing before the push stream counts as dead.
EVENTS_READ_TIMEOUT = 60.0


def unreachable(api_url: str, *, timed_out: bool) -> UiError:
    where = safe_url(api_url)
    if timed_out:
        return UiError("bridge_unreachable", f"The waqr bridge at {where} did not answer in time.")
    return UiError(
        "bridge_unreachable",
        f"Cannot reach the waqr bridge at {where}. Is waqr api running, and is WA_QR_API_URL "
        "right?",
    )


def error_for(response: httpx.Response) -> UiError:
    """The plain-words cause of a bridge reply of 400 or more."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = str(body.get("detail") or "")
    error = body.get("error")
    if response.status_code == 401:
        return UiError("bad_token", "The bridge rejected the token: check WA_QR_BRIDGE_TOKEN.")
    if response.status_code == 429 and error == "rate_limited":
        return UiError("rejected", detail)  # the bot's send rate limit, not a bad token
    if response.status_code == 429:
        wait = response.headers.get("Retry-After")
        after = f" for {wait} s" if wait and wait.isdigit() else " for a while"
        return UiError(
            "throttled",
            f"The bridge refuses this client{after} after too many rejected tokens: check "
            "WA_QR_BRIDGE_TOKEN.",
        )
    if error == "bot_unreachable":
        return UiError(
            "bot_down",
            "The bridge is up but cannot reach the WhatsApp bot: check BOT_URL on the bridge "
            "and that waqr bot runs.",
        )
    if error == "bot_timeout":
        return UiError("bot_slow", "The WhatsApp bot is not answering in time; try again.")
    return UiError("rejected", detail or f"The bridge answered {response.status_code}.")


class BridgeClient:
    """One per Streamlit server process; ``user`` names the person behind each action."""

    def __init__(self, api_url: str, token: str, *, timeout: float = 8.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self._http = httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        headers = {**(headers or {}), **({USER_HEADER: user} if user else {})} or None
        with self._mapped_transport_errors():
            response = self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise error_for(response)
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    @contextlib.contextmanager
    def _mapped_transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException:
            raise unreachable(self.api_url, timed_out=True) from None
        except httpx.TransportError:
            raise unreachable(self.api_url, timed_out=False) from None

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
                raise error_for(source.response)
            for sse in source.iter_sse():
                if sse.event in ("state", "qr"):
                    yield sse.event, json.loads(sse.data)

    def diagnose(self, *, user: str | None = None) -> dict[str, Any]:
        """The connection doctor, run by the bot (GET /admin/wa/diagnose)."""
        return self._call("GET", "/admin/wa/diagnose", user=user, timeout=DIAGNOSE_TIMEOUT)

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/admin/wa/status")

    def qr(self, *, user: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/admin/wa/qr", user=user)

    def reconnect(self, *, user: str | None = None, reset: bool = False) -> dict[str, Any]:
        return self._call(
            "POST", "/admin/wa/reconnect", user=user, params={"reset": str(reset).lower()}
        )

    def logout(self, *, user: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/admin/wa/logout", user=user, timeout=LOGOUT_TIMEOUT)

    def send_message(
        self,
        to: str,
        text: str,
        *,
        reply_to: str | None = None,
        idempotency_key: str | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = {"to": to, "text": text, "reply_to": reply_to}
        return self._call("POST", "/admin/wa/messages", user=user, json=body, headers=headers)

    def inbox(self, *, after: int = 0, limit: int = 100) -> dict[str, Any]:
        """Incoming messages after the ``seq`` given, oldest first (GET /admin/wa/messages)."""
        return self._call("GET", "/admin/wa/messages", params={"after": after, "limit": limit})

    def message(self, message_id: str) -> dict[str, Any]:
        return self._call("GET", f"/admin/wa/messages/{quote(message_id, safe='')}")

    def pair_code(self, phone: str, *, user: str | None = None) -> dict[str, Any]:
        return self._call(
            "POST",
            "/admin/wa/pair-code",
            user=user,
            json={"phone": phone},
            timeout=PAIR_CODE_TIMEOUT,
        )
