"""The layers that need no network: configuration, and what the bot last saw (account)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
from pathlib import Path
from typing import Any, Final

from waqr.doctor.verdict import LayerFailed
from waqr.errors import EngineUnavailable
from waqr.settings import Settings

# Reason codes (waqr.bot.reasons) that mean WhatsApp refused the account or the client,
# with the failure code WhatsApp sent (whatsmeow connectionevents.go).
ACCOUNT_FAILURES: Final = {
    "logged_out": 401,
    "main_device_gone": 403,
    "unknown_logout": 406,
    "client_outdated": 405,
    "server_unavailable": 503,
}


def check_config(settings: Settings) -> str:
    """Proxy URL (already validated by Settings), data dir, credentials, engine library."""
    data_dir = settings.data_dir
    if not _writable(data_dir):
        raise LayerFailed(
            "data_dir_not_writable",
            f"WAQR_DATA_DIR {data_dir} cannot be created or written by this user",
            "point WAQR_DATA_DIR at a writable directory, or fix its owner and permissions",
        )
    try:
        engine = engine_version()
    except EngineUnavailable as exc:
        raise LayerFailed(
            "engine_unavailable",
            str(exc),
            "reinstall waqr's pinned dependencies (see README, Install)",
        ) from exc
    proxy = "WA_PROXY set" if settings.wa_proxy else "no WA_PROXY"
    credentials = "credentials present" if has_credentials(settings) else "no credentials yet"
    return f"{proxy}; {data_dir} writable; {credentials}; engine neonize {engine}"


def engine_version() -> str:
    """The installed engine's version, once its library is found (never loaded here: loading
    it would start the Go runtime in this process)."""
    # The engine child's own preflight, so both agree on what "loadable" means.
    from waqr.engine.child import _preflight

    _preflight()
    return importlib.metadata.version("neonize")


def has_credentials(settings: Settings) -> bool:
    auth = settings.auth_dir
    return auth.is_dir() and any(auth.iterdir())


def check_account(status: dict[str, Any] | None) -> str:
    """What the bot last saw, from its /status; a failure WhatsApp sent fails this layer."""
    if status is None:
        return "the bot is not running here: nothing it saw to report"
    reason = status.get("lastDisconnectReason") or {}
    code = reason.get("code")
    if code in ACCOUNT_FAILURES:
        fixes = [str(reason.get("hint", ""))]
        message = str(reason.get("message", code))
        if code == "client_outdated":
            with contextlib.suppress(EngineUnavailable):
                message += f" Installed engine: neonize {engine_version()}."
            fixes.append("update waqr (pip install -U waqr) to get a newer engine")
        raise LayerFailed(f"whatsapp_{ACCOUNT_FAILURES[code]}_{code}", message, *fixes)
    state = status.get("status", "unknown")
    return f"the bot is {state}" + (f"; last reason: {code}" if code else "")


def _writable(directory: Path) -> bool:
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            return False
        existing = existing.parent
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
