"""Start the Streamlit server on the UI script (``waqr ui``).

Before Streamlit starts, :func:`ui_problem` refuses a UI that would be open to a network
(``WAQR_UI_AUTH=none`` on a non-loopback address) or whose sign-in is half configured. The
settings reach the script through its environment; for OIDC, a generated ``secrets.toml``
(mode 0600, in a private temporary directory) carries Streamlit's ``[auth]`` section."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from waqr import lifeline
from waqr.errors import ConfigError
from waqr.settings import Settings
from waqr.ui.config import is_loopback

APP = Path(__file__).with_name("app.py")


def streamlit_command(host: str, port: int, *, secrets_file: Path | None = None) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    if secrets_file is not None:
        command += ["--secrets.files", str(secrets_file)]
    return command


def ui_problem(settings: Settings) -> str | None:
    """Why the UI must not start with these settings, in one line, or None."""
    if settings.ui_auth == "none" and not is_loopback(settings.ui_host):
        return (
            f"the UI has no sign-in (WAQR_UI_AUTH=none) and would listen on {settings.ui_host}: "
            "set WAQR_UI_AUTH=password or oidc, or WAQR_UI_HOST=127.0.0.1"
        )
    if settings.ui_auth == "password" and not settings.ui_password_hash:
        return "WAQR_UI_AUTH=password needs WAQR_UI_PASSWORD_HASH (an argon2 hash)"
    if settings.ui_auth == "password" and not str(settings.ui_password_hash).startswith("$argon2"):
        return "WAQR_UI_PASSWORD_HASH must be an argon2 hash ($argon2id$...), not a password"
    if settings.ui_auth == "oidc":
        missing = [
            name
            for name, value in (
                ("WAQR_UI_OIDC_CLIENT_ID", settings.ui_oidc_client_id),
                ("WAQR_UI_OIDC_CLIENT_SECRET", settings.ui_oidc_client_secret),
                ("WAQR_UI_OIDC_METADATA_URL", settings.ui_oidc_metadata_url),
                ("WAQR_UI_OIDC_REDIRECT_URI", settings.ui_oidc_redirect_uri),
                ("WAQR_UI_ALLOWED_EMAILS", settings.ui_allowed_emails),
            )
            if not value
        ]
        if missing:
            return f"WAQR_UI_AUTH=oidc needs {', '.join(missing)}"
    return None


def oidc_secrets(settings: Settings) -> str:
    """Streamlit's ``[auth]`` section for ``st.login`` (TOML; JSON strings are TOML strings)."""
    values = {
        "redirect_uri": settings.ui_oidc_redirect_uri,
        # Signs the identity cookie; a fresh one per start signs everyone out on a restart.
        "cookie_secret": secrets.token_urlsafe(32),
        "client_id": settings.ui_oidc_client_id,
        "client_secret": settings.ui_oidc_client_secret,
        "server_metadata_url": settings.ui_oidc_metadata_url,
    }
    lines = ["[auth]"] + [f"{key} = {json.dumps(str(value))}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def write_oidc_secrets(settings: Settings, directory: Path) -> Path:
    path = directory / "secrets.toml"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(oidc_secrets(settings))
    return path


def ui_environment(settings: Settings) -> dict[str, str]:
    """What the Streamlit script reads (``waqr.ui.config``), from the validated settings:
    values from a .env file reach it too."""
    env = {
        "WA_QR_API_URL": settings.ui_api_url,
        "WAQR_UI_AUTH": settings.ui_auth,
        "WAQR_UI_SESSION_TTL": str(settings.ui_session_ttl),
        "WAQR_UI_ALLOWED_EMAILS": settings.ui_allowed_emails,
    }
    if settings.bridge_tokens:
        env["WA_QR_BRIDGE_TOKEN"] = settings.bridge_tokens
    if settings.ui_password_hash:
        env["WAQR_UI_PASSWORD_HASH"] = settings.ui_password_hash
    return env


def run_ui(settings: Settings) -> int:
    """Streamlit in a child that dies with this process; SIGTERM and Ctrl-C stop it."""
    problem = ui_problem(settings)
    if problem is not None:
        raise ConfigError(problem)
    with tempfile.TemporaryDirectory(prefix="waqr-ui-") as private:
        secrets_file = None
        if settings.ui_auth == "oidc":
            secrets_file = write_oidc_secrets(settings, Path(private))
        command = streamlit_command(settings.ui_host, settings.ui_port, secrets_file=secrets_file)
        return _supervise(command, {**os.environ, **ui_environment(settings)})


def _supervise(command: list[str], env: dict[str, str]) -> int:
    process = subprocess.Popen(lifeline.command(os.getpid(), command), env=env)
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)
        process.terminate()
        killer = threading.Timer(10, process.kill)  # Streamlit gets 10 s to stop
        killer.daemon = True
        killer.start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = process.wait()
    if stopping:
        return 130 if stopping[0] == signal.SIGINT else 0
    return code
