"""``waqr health SERVICE``: the container health check, one line and an exit status.

Asks the service on this host at its configured port: the bot's ``/health`` (503 while a
session is wedged), the bridge's ``/healthz``, Streamlit's ``/_stcore/health``. Exit 0 when
it answers 200, 1 otherwise, with the reason on one line (no secrets: only status codes).
"""

from __future__ import annotations

from typing import Literal

import httpx

from waqr.settings import Settings

Service = Literal["bot", "api", "ui"]
SERVICES: tuple[Service, ...] = ("bot", "api", "ui")


def local_address(host: str) -> str:
    """Where to reach, from this machine, a server bound to ``host`` (a wildcard bind
    answers on loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104


def health_url(service: Service, settings: Settings) -> str:
    if service == "bot":
        scheme = "https" if settings.bot_tls else "http"
        return f"{scheme}://{local_address(settings.bot_host)}:{settings.bot_port}/health"
    if service == "api":
        scheme = "https" if settings.api_tls else "http"
        return f"{scheme}://{local_address(settings.api_host)}:{settings.api_port}/healthz"
    return f"http://{local_address(settings.ui_host)}:{settings.ui_port}/_stcore/health"


def check(service: Service, settings: Settings, timeout: float = 5.0) -> tuple[bool, str]:
    url = health_url(service, settings)
    try:
        # A liveness probe of a service on this host: whether it answers, not who it is (its
        # certificate names the host others reach it by, not 127.0.0.1).
        answer = httpx.get(url, timeout=timeout, verify=False)  # noqa: S501
    except httpx.HTTPError as exc:
        return False, f"{service} unhealthy: no answer from {url} ({type(exc).__name__})"
    if answer.status_code != 200:
        return False, f"{service} unhealthy: {url} answered {answer.status_code}"
    return True, f"{service} healthy"
