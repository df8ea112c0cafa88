"""Where the UI finds the bridge: ``st.secrets`` on Streamlit Community Cloud, the environment
locally (``WA_QR_API_URL``, ``WA_QR_BRIDGE_TOKEN``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_API_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class UiConfig:
    api_url: str
    token: str | None


def _secret(name: str) -> str | None:
    try:
        import streamlit as st

        value = st.secrets.get(name)
    except Exception:  # no secrets.toml (local run): Streamlit raises its own error
        return None
    return str(value) if value else None


def load_ui_config() -> UiConfig:
    api_url = _secret("WA_QR_API_URL") or os.environ.get("WA_QR_API_URL") or DEFAULT_API_URL
    token = _secret("WA_QR_BRIDGE_TOKEN") or os.environ.get("WA_QR_BRIDGE_TOKEN") or None
    if token and "," in token:
        token = token.split(",", 1)[0]  # the bridge may accept several; any one will do
    return UiConfig(api_url=api_url.rstrip("/"), token=token)
