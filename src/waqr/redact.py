"""Scrub secrets out of text bound for a log line.

Log lines come from our code and from the engine (whatsmeow's own lines, captured from the
child process), which may mention a JID (a phone number), a QR payload or a proxy password.
Every log record passes through :func:`redact` before it is written, so a slip in one call
site cannot leak a secret. Over-redaction (a long number that was not a phone) is the
accepted cost.
"""

from __future__ import annotations

import re

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # QR payloads: "https://wa.me/settings/linked_devices#ref,noise,identity,adv,type" or the
    # older bare "2@ref,base64,base64,base64".
    (re.compile(r"https://wa\.me/settings/linked_devices#\S*"), "[qr]"),
    (re.compile(r"\b\d@[A-Za-z0-9+/=_,.-]{8,}"), "[qr]"),
    # Credentials in URLs (proxy user:pass) and HTTP auth headers.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1[credentials]@"),
    (re.compile(r"(?i)\b(bearer|x-api-key:?)\s+\S+"), r"\1 [token]"),
    # Pairing codes (8 characters shown as XXXX-XXXX).
    (re.compile(r"\b[A-Z0-9]{4}-[A-Z0-9]{4}\b"), "[pair-code]"),
    # Long base64 runs: keys, secrets, refs.
    (re.compile(r"[A-Za-z0-9+/]{32,}={0,2}"), "[secret]"),
    # Phone numbers, alone or inside a JID (15551234567@s.whatsapp.net, 1555...:3@...).
    (re.compile(r"\+?\d{7,15}(?=[@:.\s,;)\]\"']|$)"), "[phone]"),
)


def redact(text: str) -> str:
    """Return ``text`` with QR payloads, credentials, codes and phone numbers masked."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def mask_phone(number: str) -> str:
    """Show only the country-code-ish head and the last two digits: ``+49*******12``."""
    digits = [c for c in number if c.isdigit()]
    if len(digits) < 5:
        return "*" * len(digits)
    return "+" + "".join(digits[:2]) + "*" * (len(digits) - 4) + "".join(digits[-2:])
