"""`waqr ui` refuses what it must not start, before Streamlit starts."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from argon2 import PasswordHasher

from waqr.settings import load_settings
from waqr.ui.launch import oidc_secrets, ui_problem

HASH = PasswordHasher().hash("a long enough operator password")


def test_an_open_ui_is_refused_off_loopback() -> None:
    assert ui_problem(load_settings({"WAQR_UI_HOST": "127.0.0.1"})) is None
    problem = ui_problem(load_settings({"WAQR_UI_HOST": "0.0.0.0"}))
    assert problem is not None
    assert "WAQR_UI_AUTH" in problem
    exposed = {"WAQR_UI_HOST": "0.0.0.0", "WAQR_UI_AUTH": "password"}
    assert ui_problem(load_settings({**exposed, "WAQR_UI_PASSWORD_HASH": HASH})) is None


def test_half_configured_sign_in_is_refused() -> None:
    assert "WAQR_UI_PASSWORD_HASH" in str(ui_problem(load_settings({"WAQR_UI_AUTH": "password"})))
    plain = load_settings({"WAQR_UI_AUTH": "password", "WAQR_UI_PASSWORD_HASH": "hunter2"})
    assert "argon2" in str(ui_problem(plain))
    oidc = ui_problem(load_settings({"WAQR_UI_AUTH": "oidc", "WAQR_UI_OIDC_CLIENT_ID": "x"}))
    assert "WAQR_UI_OIDC_CLIENT_SECRET" in str(oidc)
    assert "WAQR_UI_ALLOWED_EMAILS" in str(oidc)


def test_the_oidc_secrets_are_streamlits_auth_section() -> None:
    settings = load_settings(
        {
            "WAQR_UI_AUTH": "oidc",
            "WAQR_UI_OIDC_CLIENT_ID": "waqr-ui",
            "WAQR_UI_OIDC_CLIENT_SECRET": 'se"cret',
            "WAQR_UI_OIDC_METADATA_URL": "http://127.0.0.1:9/.well-known/openid-configuration",
            "WAQR_UI_OIDC_REDIRECT_URI": "http://127.0.0.1:8501/oauth2callback",
            "WAQR_UI_ALLOWED_EMAILS": "@example.org",
        }
    )
    auth = tomllib.loads(oidc_secrets(settings))["auth"]
    assert auth["client_secret"] == 'se"cret'
    assert auth["redirect_uri"].endswith("/oauth2callback")
    assert len(auth["cookie_secret"]) >= 32


def test_waqr_ui_exits_2_with_one_line_when_open_on_a_public_address(tmp_path: Path) -> None:
    env = {**os.environ, "WAQR_UI_HOST": "0.0.0.0", "WAQR_UI_AUTH": "none"}
    done = subprocess.run(
        [sys.executable, "-m", "waqr.cli", "ui"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "WAQR_UI_AUTH" in lines[0]
