"""Reason codes: why a session is in its state, in plain words, with the next step.

Every transition records one. The code is machine-readable and part of the API; message
and hint are for people. Sources for WhatsApp's codes: whatsmeow connectionevents.go
(failure reasons 401/402/403/405/406/409/5xx, stream errors 401/440/515).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

_TEMP_BAN_CAUSES = {
    1: "sending to too many people",
    2: "being blocked by too many users",
    3: "creating too many groups",
    4: "sending the same message to too many people",
    5: "using broadcast lists too much",
}


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    hint: str
    at: float = field(default_factory=time.time)
    detail: str | None = None
    # The connection doctor's verdict (layer, cause, detail, fixes) on a failure to connect.
    diagnosis: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.detail:
            body["detail"] = self.detail
        if self.diagnosis:
            body["diagnosis"] = self.diagnosis
        return body


_TABLE: dict[str, tuple[str, str]] = {
    "connection_lost": (
        "The connection to WhatsApp dropped.",
        "Nothing to do: waqr reconnects by itself and keeps the credentials.",
    ),
    "connect_timeout": (
        "The connection attempt hung: something accepted it and never answered.",
        "Check WA_PROXY and any firewall or proxy between this host and web.whatsapp.com:443; "
        "waqr killed the stuck engine and retries with backoff.",
    ),
    "engine_crashed": (
        "The WhatsApp engine process crashed.",
        "Nothing to do: waqr started a fresh engine with the same credentials. If it repeats, "
        "report it with the logs.",
    ),
    "stop_timeout": (
        "The WhatsApp engine did not stop when asked and was killed.",
        "Nothing to do: credentials are kept and a fresh engine is started.",
    ),
    "engine_unavailable": (
        "The WhatsApp engine (neonize) cannot be loaded.",
        "Reinstall waqr's pinned dependencies (see README, Install); waqr never downloads "
        "engine libraries at run time.",
    ),
    "logged_out": (
        "WhatsApp logged this device out (it was removed from Linked devices on the phone).",
        "Scan the new QR code, or link with a phone number, to link again.",
    ),
    "main_device_gone": (
        "WhatsApp refused the device (403): the account is locked or banned, or the phone "
        "removed it.",
        "Open WhatsApp on the phone and check the account; then relink "
        "(POST /reconnect?reset=true).",
    ),
    "unknown_logout": (
        "WhatsApp logged the device out for an unstated reason (406), usually a ban.",
        "Check the account on the phone; then relink (POST /reconnect?reset=true).",
    ),
    "client_outdated": (
        "WhatsApp rejected the client as outdated (405).",
        "Upgrade waqr to a release with a newer engine (neonize/whatsmeow); reconnecting with "
        "the same version will keep failing.",
    ),
    "bad_user_agent": (
        "WhatsApp rejected the client's user agent (409).",
        "Upgrade waqr to a release with a newer engine.",
    ),
    "connect_failure": (
        "WhatsApp refused the login.",
        "See detail; POST /reconnect to try again, or relink if it persists.",
    ),
    "stream_replaced": (
        "Another client logged in with the same credentials and WhatsApp closed this one "
        "(440 replaced).",
        "Nothing to do if a second waqr was briefly running (a restart or deploy overlap): "
        "waqr reconnects with backoff and keeps the credentials. If it repeats, it stops; "
        "see replaced_repeatedly.",
    ),
    "stream_error": (
        "WhatsApp closed the stream with an error.",
        "Nothing to do: waqr reconnects by itself.",
    ),
    "server_unavailable": (
        "WhatsApp's servers refused the login as temporarily unavailable (5xx).",
        "Nothing to do: the engine and waqr retry with backoff. If it lasts, check "
        "WhatsApp's service status.",
    ),
    "qr_batch_exhausted": (
        "The batch of QR codes ran out unscanned; someone is waiting, so waqr is fetching "
        "a new one.",
        "Scan the new QR code when it appears.",
    ),
    "login_stalled": (
        "The engine stopped making progress while logging in (after linking, or with saved "
        "credentials).",
        "Nothing to do: waqr replaced the engine and keeps the credentials.",
    ),
    "engine_unresponsive": (
        "The WhatsApp engine stopped answering and was replaced.",
        "Nothing to do: credentials are kept and a fresh engine is started. If it repeats, "
        "report it with the logs.",
    ),
    "engine_protocol_error": (
        "The WhatsApp engine process sent something unreadable and was replaced.",
        "Nothing to do: credentials are kept and a fresh engine is started. If it repeats, "
        "report it with the logs.",
    ),
    "engine_start_failed": (
        "The WhatsApp engine process could not be started.",
        "Check the host's limits (open files, processes, memory) and disk space; waqr "
        "retries with backoff.",
    ),
    "internal_error": (
        "waqr hit an unexpected error in this session.",
        "Nothing to do: the session retries with backoff. Please report it with the logs.",
    ),
    "link_unresponsive": (
        "WhatsApp stopped answering on a link that looked open (keepalive pings unanswered): "
        "a NAT timeout, a dying middlebox or a half-open socket.",
        "Nothing to do: waqr replaced the engine and reconnects with backoff, keeping the "
        "credentials. If it repeats, check NAT/firewall idle timeouts and WA_PROXY.",
    ),
    "qr_timeout": (
        "No one scanned the QR codes; waqr stopped asking WhatsApp for more.",
        "Ask for a QR again (GET /qr or the UI) when you are ready to scan.",
    ),
    "logout_requested": (
        "The device was logged out on request.",
        "Scan the new QR code, or link with a phone number, to link again.",
    ),
    "reset_requested": (
        "Credentials were wiped on request (relink).",
        "Scan the new QR code, or link with a phone number.",
    ),
}


_UNKNOWN = (
    "The WhatsApp engine ended unexpectedly.",
    "Nothing to do: waqr retries with backoff. If it repeats, report it with the logs.",
)


def reason(code: str, *, detail: str | None = None) -> Reason:
    """The reason for ``code``; a code this table does not know (an engine's own word for
    its end) still gets a message and a hint, never an error."""
    message, hint = _TABLE.get(code, _UNKNOWN)
    return Reason(code=code, message=message, hint=hint, detail=detail)


def logged_out_reason(
    status: int,
    *,
    linked_for: float | None = None,
    via_proxy: bool = False,
    node: str | None = None,
) -> Reason:
    """A logout with what helps explain it: unlinks seconds after linking are reported across
    WhatsApp clients without a cause (whatsmeow #1042, #1153; whatsmeow keeps only code and
    type, PR #1211), so say how long the device had been linked, whether a proxy was in the
    path, and the whole node WhatsApp sent (already sanitised by the engine)."""
    code = {403: "main_device_gone", 406: "unknown_logout"}.get(status, "logged_out")
    detail = f"WhatsApp status {status}"
    if linked_for is not None:
        detail += f"; {linked_for:.0f} s after linking"
    else:
        detail += "; linked before this run of waqr"
    detail += "; through WA_PROXY" if via_proxy else "; direct connection"
    if node:
        detail += f"; node: {node}"
    return reason(code, detail=detail)


def replaced_repeatedly_reason(count: int, window: float, *, node: str | None = None) -> Reason:
    """The session stopped after ``count`` 440 replaced within ``window`` seconds: two clients
    hold the same credentials and each reconnect takes the device from the other."""
    return Reason(
        code="replaced_repeatedly",
        message=(
            f"Two clients hold the same credentials: WhatsApp replaced this session {count} "
            f"times within {window / 60:g} min (440 replaced), so waqr stopped reconnecting "
            "instead of fighting the other client for the device."
        ),
        hint=(
            "Find the other client using this account's credentials and stop it: a second "
            "waqr bot or container on the same data directory (WAQR_DATA_DIR), a copy or "
            "restored backup of that directory, or another replica. Then POST /reconnect; "
            "or relink (POST /reconnect?reset=true) to give this bot credentials of its own."
        ),
        detail=f"{count} x 440 replaced within {window:g} s (WAQR_REPLACED_LIMIT, "
        "WAQR_REPLACED_WINDOW)" + (f"; last node: {node}" if node else ""),
    )


def client_outdated_reason(engine_version: str | None, *, detail: str | None = None) -> Reason:
    """A 405: WhatsApp no longer accepts the WhatsApp Web version this engine build announces
    (it is compiled into the engine, so only another build helps)."""
    build = engine_version or "this engine build (its version could not be read)"
    return Reason(
        code="client_outdated",
        message=f"WhatsApp refused the client as outdated (405): {build} is no longer accepted.",
        hint=(
            "Upgrade waqr to a release with a newer engine (pip install -U waqr, or update the "
            "waqr image); waqr pins neonize exactly, so upgrade waqr rather than neonize alone. "
            "Reconnecting with this build will keep failing."
        ),
        detail=detail,
    )


def temporary_ban_reason(ban_code: int, expires_in: float) -> Reason:
    cause = _TEMP_BAN_CAUSES.get(ban_code, f"reason {ban_code}")
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() + expires_in))
    return Reason(
        code="temp_banned",
        message=f"WhatsApp temporarily banned this account (402) for {cause}.",
        hint=f"Wait until the ban expires ({until}, in {int(expires_in)} s), then POST /reconnect.",
        detail=f"ban code {ban_code}, expires in {int(expires_in)} s",
    )


def connect_failure_reason(
    status: int, message: str, *, engine_version: str | None = None
) -> Reason:
    detail = f"WhatsApp status {status}" + (f": {message}" if message else "")
    if status == 405:
        return client_outdated_reason(engine_version, detail=detail)
    code = {409: "bad_user_agent"}.get(status, "connect_failure")
    return reason(code, detail=detail)


# The dial error text (Go's net/http, x509 and proxy errors) says which layer failed.
# Go reports a proxy's non-200 answer to CONNECT as just the status text after the URL:
# 'Get "https://web.whatsapp.com/ws/chat": Forbidden'.
_PROXY_ANSWER = re.compile(r'Get "[^"]+": ([A-Z][A-Za-z -]+)$')
_PROXY_FAILURE = re.compile(r"proxyconnect|socks connect|socks5|proxy: ")

_DIAL_CAUSES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"no such host|server misbehaving|lookup "),
        "The WhatsApp host name could not be resolved (DNS).",
        "Check this host's DNS resolver (/etc/resolv.conf) can resolve web.whatsapp.com.",
    ),
    (
        re.compile(r"x509|certificate|tls: "),
        "The TLS certificate presented for web.whatsapp.com is not trusted: something on "
        "the path is intercepting TLS.",
        "Exempt web.whatsapp.com from TLS inspection on your firewall or proxy.",
    ),
    (
        re.compile(r"connection refused"),
        "The connection was refused.",
        "A firewall or the proxy is rejecting outbound connections to port 443.",
    ),
    (
        re.compile(r"i/o timeout|deadline exceeded|timed out"),
        "The connection timed out.",
        "Outbound traffic to web.whatsapp.com:443 is probably dropped by a firewall.",
    ),
    (
        re.compile(r"bad status|403|Forbidden"),
        "WhatsApp rejected the WebSocket upgrade.",
        "This IP may be blocked by WhatsApp; try another network or a proxy (WA_PROXY).",
    ),
)

_PROXY_HINT = (
    "Check WA_PROXY: address, port, credentials, and that the proxy allows CONNECT to "
    "web.whatsapp.com:443."
)


def dial_failure_reason(error: str, *, via_proxy: bool = False) -> Reason:
    if via_proxy:
        answer = _PROXY_ANSWER.search(error)
        if answer:
            return Reason(
                code="connection_failure",
                message=f"The proxy in WA_PROXY refused the connection: {answer.group(1)}.",
                hint=_PROXY_HINT,
                detail=error,
            )
        if _PROXY_FAILURE.search(error):
            where = "proxy in WA_PROXY could not be reached or failed the connection"
            message = f"The {where}."
            if "connection refused" in error:
                message = "The proxy in WA_PROXY refused the TCP connection (is it running?)."
            return Reason(
                code="connection_failure", message=message, hint=_PROXY_HINT, detail=error
            )
    for pattern, message, hint in _DIAL_CAUSES:
        if pattern.search(error):
            return Reason(code="connection_failure", message=message, hint=hint, detail=error)
    return Reason(
        code="connection_failure",
        message="Could not connect to WhatsApp.",
        hint="See detail; waqr retries with backoff.",
        detail=error,
    )
