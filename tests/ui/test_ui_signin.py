"""Sign-in before any power, in real Chromium: a password (argon2) and OIDC against a real
provider process on loopback (oidc-provider-mock)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from tests.integration.test_bridge import TOKEN
from tests.procs import ServiceProcess, free_port
from tests.ui.conftest import (
    Backend,
    bridge_requests,
    running_backend,
    running_ui,
    serving,
    shot,
)
from tests.ui.fake_bridge import fake_bridge
from tests.ui.test_ui import BADGE, ERROR, badge_state, shown_qr
from waqr.settings import load_settings
from waqr.ui.launch import write_oidc_secrets

pytestmark = [pytest.mark.e2e]

PASSWORD = "a long operator passphrase 7"
PHONE = "+15550001111"


@pytest.fixture
def backend(tmp_path: Path, sim_state: Path) -> Iterator[Backend]:
    with running_backend(tmp_path, sim_state, refs=6) as running:
        yield running


def audit_users(api: ServiceProcess) -> list[tuple[str, str | None]]:
    return [
        (record["action"], record.get("user"))
        for record in map(json.loads, api.logs().splitlines())
        if record.get("logger") == "waqr.audit"
    ]


def sign_in_form_only(page: Page) -> None:
    expect(page.get_by_label("Password", exact=True)).to_be_visible(timeout=30_000)
    page.wait_for_timeout(3000)  # time enough for anything else to have been drawn
    assert page.locator(BADGE).count() == 0
    assert page.get_by_role("button", name="Reconnect").count() == 0
    assert page.get_by_role("button", name="Get pairing code").count() == 0


@pytest.mark.timeout(420)
def test_password_sign_in_guards_every_action_and_signs_out(
    backend: Backend, page: Page, tmp_path: Path
) -> None:
    env = {"WAQR_UI_AUTH": "password", "WAQR_UI_PASSWORD_HASH": PasswordHasher().hash(PASSWORD)}
    with running_ui(tmp_path / "ui", backend.api.url, TOKEN, env=env) as url:
        before = bridge_requests(backend.api)
        page.goto(url)
        sign_in_form_only(page)
        shot(page, "sign_in")
        assert bridge_requests(backend.api) == before  # a visitor costs the bridge nothing

        page.get_by_label("Password", exact=True).fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(f'{ERROR}[data-kind="wrong_password"]')).to_be_visible()
        assert page.locator(BADGE).count() == 0
        assert bridge_requests(backend.api) == before

        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        badge_state(page, "qr_ready")
        expect(page.get_by_text("WhatsApp → Linked devices → Link a device")).to_be_visible()

        # Link, then log out: it asks first.
        backend.sim.scan(shown_qr(page))
        badge_state(page, "connected")
        assert page.get_by_role("button", name="Get pairing code").count() == 0
        page.get_by_role("button", name="Log out…").click()
        expect(page.get_by_text("Log out unlinks this device")).to_be_visible()
        shot(page, "logout_confirm")
        assert backend.bot.status()["hasCredentials"] is True  # nothing happened yet
        page.get_by_role("button", name="Yes, log out").click()
        badge_state(page, "qr_ready", 60_000)
        assert backend.bot.status()["hasCredentials"] is False

        # Pair by code: the code and its instruction, no QR beside it.
        page.get_by_label("Phone number with country code").fill(PHONE)
        page.get_by_role("button", name="Get pairing code").click()
        code = page.locator('[data-testid="waqr-pair-code"]')
        expect(code).to_have_count(1, timeout=60_000)
        badge_state(page, "pairing_code")
        expect(page.locator('[data-testid="stImage"]')).to_have_count(0)
        expect(page.locator('[data-testid="waqr-countdown"]')).to_have_count(0)
        expect(page.get_by_text("Link with phone number instead")).to_be_visible()
        backend.sim.enter_code(code.inner_text().strip())
        badge_state(page, "connected", 60_000)
        expect(code).to_have_count(0)  # a used code is not left on screen

        page.get_by_role("button", name="Sign out").click()
        sign_in_form_only(page)
    users = audit_users(backend.api)
    assert ("logout", "password@local") in users
    assert ("pair_code", "password@local") in users


@pytest.fixture
def oidc_provider(tmp_path: Path) -> Iterator[str]:
    """oidc-provider-mock, a real OpenID Connect provider, on a loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
        tmp_path / "oidc.log",
        url + "/.well-known/openid-configuration",
    ):
        yield url


def provider_sign_in(page: Page, email: str) -> None:
    page.get_by_role("button", name="Sign in with your identity provider").click()
    page.locator('input[name="sub"]').fill(email)  # the provider's own form
    page.get_by_role("button", name="Authorize").click()


def provider_sign_out(page: Page) -> None:
    """Streamlit's st.logout ends the session at the provider too: confirm it there."""
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click(timeout=30_000)
    expect(page.get_by_role("button", name="Sign in with your identity provider")).to_be_visible(
        timeout=30_000
    )


@pytest.mark.timeout(300)
def test_oidc_sign_in_admits_the_allow_list_only(
    backend: Backend, oidc_provider: str, page: Page, tmp_path: Path
) -> None:
    port = free_port()
    settings = load_settings(
        {
            "WAQR_UI_AUTH": "oidc",
            "WAQR_UI_OIDC_CLIENT_ID": "waqr-ui",
            "WAQR_UI_OIDC_CLIENT_SECRET": "waqr-ui-client-secret",
            "WAQR_UI_OIDC_METADATA_URL": oidc_provider + "/.well-known/openid-configuration",
            "WAQR_UI_OIDC_REDIRECT_URI": f"http://127.0.0.1:{port}/oauth2callback",
            "WAQR_UI_ALLOWED_EMAILS": "ana@example.org,@ops.example.org",
        }
    )
    (tmp_path / "secrets").mkdir()
    secrets_file = write_oidc_secrets(settings, tmp_path / "secrets")
    env = {"WAQR_UI_AUTH": "oidc", "WAQR_UI_ALLOWED_EMAILS": settings.ui_allowed_emails}
    with running_ui(
        tmp_path / "ui", backend.api.url, TOKEN, env=env, secrets_file=secrets_file, port=port
    ) as url:
        before = bridge_requests(backend.api)
        page.goto(url)
        expect(
            page.get_by_role("button", name="Sign in with your identity provider")
        ).to_be_visible(timeout=30_000)
        page.wait_for_timeout(3000)
        assert page.locator(BADGE).count() == 0
        assert bridge_requests(backend.api) == before

        provider_sign_in(page, "eve@example.com")  # a real account, not on the list
        expect(page.locator(f'{ERROR}[data-kind="not_allowed"]')).to_be_visible(timeout=30_000)
        assert page.locator(BADGE).count() == 0
        assert bridge_requests(backend.api) == before
        provider_sign_out(page)

        provider_sign_in(page, "bo@ops.example.org")
        badge_state(page, "qr_ready")
        page.get_by_role("button", name="Relink…").click()
        expect(page.get_by_text("Relink wipes this device's credentials")).to_be_visible()
        page.get_by_role("button", name="Yes, relink").click()
        page.wait_for_timeout(1000)
        badge_state(page, "qr_ready", 60_000)
        provider_sign_out(page)
        assert page.locator(BADGE).count() == 0
    assert ("relink", "bo@ops.example.org") in audit_users(backend.api)


@pytest.mark.timeout(180)
def test_a_password_session_expires_on_an_open_page(tmp_path: Path, page: Page) -> None:
    env = {
        "WAQR_UI_AUTH": "password",
        "WAQR_UI_PASSWORD_HASH": PasswordHasher().hash(PASSWORD),
        "WAQR_UI_SESSION_TTL": "8",
    }
    with (
        fake_bridge({"status": "logged_out", "keepaliveFailing": False}) as bridge,
        running_ui(tmp_path / "ui", bridge.url, TOKEN, env=env) as url,
    ):
        page.goto(url)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        badge_state(page, "logged_out")
        # Nobody touches the page: the live panel itself notices the end of the session.
        expect(page.get_by_text("Your session expired")).to_be_visible(timeout=60_000)
        sign_in_form_only(page)
