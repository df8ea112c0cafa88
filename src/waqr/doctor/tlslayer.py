"""The TLS layer: handshake and certificate chain, with stdlib ``ssl``.

When the chain does not verify, the certificate is fetched again without verification (over a
fresh path from ``reopen``) to say who issued it, and the server's Date header is read to tell
a wrong clock from a wrong certificate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from cryptography import x509

from waqr.doctor.target import WS_PATH, ProbeTarget
from waqr.doctor.verdict import LayerFailed

# OpenSSL X509_V_ERR_* codes (x509_vfy.h).
NOT_YET_VALID: Final = 9
EXPIRED: Final = 10
FIX_CLOCK: Final = "correct the system clock (enable NTP: timedatectl set-ntp true)"
FIX_INTERCEPTION: Final = (
    "exempt web.whatsapp.com from TLS inspection on the firewall or proxy, or use a proxy that "
    "does not intercept"
)
HEAD_LIMIT: Final = 16 * 1024

Reopen = Callable[[], Awaitable[socket.socket]]


@dataclass
class TlsStreams:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    issuer: str


def client_context(target: ProbeTarget) -> ssl.SSLContext:
    # With no bundle, the default paths: OpenSSL honours SSL_CERT_FILE, as the Go engine does.
    cafile = str(target.ca_bundle) if target.ca_bundle is not None else None
    return ssl.create_default_context(cafile=cafile)


async def handshake(sock: socket.socket, target: ProbeTarget, reopen: Reopen) -> TlsStreams:
    try:
        # Our own bound: asyncio's ssl_handshake_timeout ends in a ConnectionAbortedError that
        # cannot be told from a reset.
        async with asyncio.timeout(target.step_timeout):
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=client_context(target), server_hostname=target.host
            )
    except ssl.SSLCertVerificationError as exc:
        raise await _explain_untrusted(exc, target, reopen) from exc
    except (TimeoutError, ssl.SSLError, ConnectionError, OSError) as exc:
        raise _handshake_failure(exc, target) from exc
    issuer = _issuer_of(writer)
    return TlsStreams(reader, writer, issuer)


def _handshake_failure(exc: BaseException, target: ProbeTarget) -> LayerFailed:
    if isinstance(exc, TimeoutError):
        return LayerFailed(
            "tls_no_answer",
            f"the TLS handshake with {target.address} got no answer within "
            f"{target.step_timeout:g} s: a middlebox accepts the connection and holds it",
            "check the firewall or proxy between this host and WhatsApp",
            "set WA_PROXY to a proxy that reaches web.whatsapp.com:443",
        )
    return LayerFailed(
        "tls_failed",
        f"the TLS handshake with {target.address} failed: {exc}",
        "check the firewall or proxy between this host and WhatsApp",
    )


async def _explain_untrusted(
    exc: ssl.SSLCertVerificationError, target: ProbeTarget, reopen: Reopen
) -> LayerFailed:
    seen = await _inspect(target, reopen)
    cert, server_date = seen if seen is not None else (None, None)
    issuer = cert.issuer.rfc4514_string() if cert is not None else "unknown"
    now = dt.datetime.now(dt.UTC)
    offset = ""
    if server_date is not None:
        seconds = (server_date - now).total_seconds()
        offset = f"; the server's Date header is {seconds:+.0f} s from this host's clock"
    if exc.verify_code in (NOT_YET_VALID, EXPIRED):
        when = "not yet valid" if exc.verify_code == NOT_YET_VALID else "expired"
        window = ""
        if cert is not None:
            window = (
                f" (valid {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; this host says "
                f"{now:%Y-%m-%d %H:%M} UTC)"
            )
        return LayerFailed(
            "certificate_not_yet_valid"
            if exc.verify_code == NOT_YET_VALID
            else "certificate_expired",
            f"{target.host}'s certificate is {when}{window}{offset}. Everywhere at once, "
            "this means this host's clock is wrong",
            FIX_CLOCK,
            FIX_INTERCEPTION,
        )
    return LayerFailed(
        "tls_untrusted_issuer",
        f"{target.host}'s certificate is issued by {issuer}, which this host does not trust "
        f"({exc.verify_message}): something between here and WhatsApp intercepts TLS",
        FIX_INTERCEPTION,
        "if the interception is intended, add its CA to the trust store (SSL_CERT_FILE)",
    )


async def _inspect(
    target: ProbeTarget, reopen: Reopen
) -> tuple[x509.Certificate | None, dt.datetime | None] | None:
    """The unverified certificate and the server's Date header, best effort."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(target.step_timeout):
            sock = await reopen()
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=context, server_hostname=target.host
            )
            try:
                der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                cert = x509.load_der_x509_certificate(der) if der else None
                request = (
                    f"GET {WS_PATH} HTTP/1.1\r\nHost: {target.host}\r\nConnection: close\r\n\r\n"
                )
                writer.write(request.encode())
                head = await reader.read(HEAD_LIMIT)
                return cert, _date_header(head)
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError, LayerFailed):
        return None


def _date_header(head: bytes) -> dt.datetime | None:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "date":
            try:
                return email.utils.parsedate_to_datetime(value.strip())
            except (TypeError, ValueError):
                return None
    return None


def _issuer_of(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peercert") or {}
    for rdn in peer.get("issuer", ()):
        for name, value in rdn:
            if name in ("commonName", "organizationName"):
                return str(value)
    return "unknown"
