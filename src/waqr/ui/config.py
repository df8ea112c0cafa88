"""Where the UI finds its settings: ``st.secrets`` on Streamlit Community Cloud, the
environment locally (the same names as ``waqr.settings``: ``WA_QR_API_URL``,
``WA_QR_BRIDGE_TOKEN``, ``WAQR_UI_AUTH``, ...). ``waqr ui`` validates them before Streamlit
starts; this module only reads them inside the Streamlit script."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_SESSION_TTL = 8 * 3600
AUTH_MODES = ("none", "password", "oidc")
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class UiConfig:
    api_url: str
    token: str | None
    auth: str = "none"  # none | password | oidc
    password_hash: str | None = None
    session_ttl: float = DEFAULT_SESSION_TTL
    allowed_emails: tuple[str, ...] = ()


def _secret(name: str) -> str | None:
    try:
        import streamlit as st

        value = st.secrets.get(name)
    except Exception:  # no secrets.toml (local run): Streamlit raises its own error
        return None
    return str(value) if value else None


def _read(name: str) -> str | None:
    return _secret(name) or os.environ.get(name) or None


def email_list(value: str | None) -> tuple[str, ...]:
    """``WAQR_UI_ALLOWED_EMAILS``: comma-separated addresses or ``@domain`` entries."""
    return tuple(e.strip().lower() for e in (value or "").split(",") if e.strip())


def load_ui_config() -> UiConfig:
    api_url = _read("WA_QR_API_URL") or DEFAULT_API_URL
    token = _read("WA_QR_BRIDGE_TOKEN")
    if token and "," in token:
        token = token.split(",", 1)[0]  # the bridge may accept several; any one will do
    auth = (_read("WAQR_UI_AUTH") or "none").strip().lower()
    ttl = _read("WAQR_UI_SESSION_TTL") or ""
    session_ttl = float(ttl) if ttl.replace(".", "", 1).isdigit() else DEFAULT_SESSION_TTL
    return UiConfig(
        api_url=api_url.rstrip("/"),
        token=token,
        auth=auth,
        password_hash=_read("WAQR_UI_PASSWORD_HASH"),
        session_ttl=session_ttl,
        allowed_emails=email_list(_read("WAQR_UI_ALLOWED_EMAILS")),
    )


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
