"""What a person sees in the browser, against the real stack."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.harness import wait_status
from tests.integration.test_bridge import TOKEN
from tests.procs import free_port
from tests.ui.conftest import Stack, running_ui, shot
from waqr.sim.frontdoor import FrontDoorFault

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BADGE = '[data-testid="waqr-badge"]'
ERROR = '[data-testid="waqr-error"]'


def badge_state(page: Page, state: str, timeout: float = 30_000) -> None:
    expect(page.locator(f'{BADGE}[data-state="{state}"]')).to_be_visible(timeout=timeout)


def shown_qr(page: Page) -> str:
    """Decode the QR image the page shows, as a phone camera would."""
    image = page.locator('[data-testid="stImage"] img').first
    expect(image).to_be_visible(timeout=30_000)
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(image.screenshot())))
    assert decoded, "the page shows no readable QR code"
    return str(decoded[0].text)


def test_the_qr_appears_and_follows_a_rotation(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url)
    badge_state(page, "qr_ready")
    expect(page.get_by_text("Open page (WAQR_UI_AUTH=none)")).to_be_visible()  # it says so
    expect(page.get_by_text("WhatsApp → Linked devices → Link a device")).to_be_visible()
    first = shown_qr(page)
    assert first == stack.bot.get("/qr").json()["qr"]
    countdown = page.locator('[data-testid="waqr-countdown"]')
    assert 0 < int(countdown.get_attribute("data-seconds") or 0) <= 20
    shot(page, "qr_ready")  # docs/ui-linking.png in README is a copy of this one
    # The next code replaces it without a reload (codes live 20 s with two refs).
    current = first
    for _ in range(45):
        page.wait_for_timeout(1000)
        current = shown_qr(page)
        if current != first:
            break
    assert current != first
    assert current == stack.bot.get("/qr").json()["qr"]
    shot(page, "qr_rotated")


def test_a_scan_turns_the_badge_connected(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url)
    badge_state(page, "qr_ready")
    stack.sim.scan(shown_qr(page))
    badge_state(page, "connected")
    expect(page.get_by_text("Number: +15")).to_be_visible()
    assert "15550001111" not in page.content()  # the number is shown masked
    expect(page.get_by_role("button", name="Log out…")).to_be_visible()
    shot(page, "connected")


def test_reconnect_keeps_the_link_and_relink_asks_first(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url)
    badge_state(page, "qr_ready")
    stack.sim.scan(shown_qr(page))
    badge_state(page, "connected")
    starts = stack.bot.status()["engine"]["starts"]
    page.get_by_role("button", name="Reconnect").click()
    page.wait_for_timeout(500)
    wait_status(stack.bot, "connected", 30)
    assert stack.bot.status()["engine"]["starts"] == starts + 1
    badge_state(page, "connected")
    page.get_by_role("button", name="Relink…").click()
    expect(page.get_by_text("Relink wipes this device's credentials")).to_be_visible()
    shot(page, "relink_confirm")
    assert stack.bot.status()["hasCredentials"] is True  # nothing happened yet
    page.get_by_role("button", name="Yes, relink").click()
    badge_state(page, "qr_ready")
    assert stack.bot.status()["hasCredentials"] is False


def test_the_pairing_form_rejects_a_bad_number_and_shows_a_code(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url)
    badge_state(page, "qr_ready")
    field = page.get_by_label("Phone number with country code")
    field.fill("12345")
    page.get_by_role("button", name="Get pairing code").click()
    refusal = page.locator(f'{ERROR}[data-kind="invalid_phone"]')
    expect(refusal).to_contain_text("must start with '+'")
    page.wait_for_timeout(2500)  # the live panel redraws every second: the answer stays
    expect(refusal).to_be_visible()
    field.fill("+15550001111")
    page.get_by_role("button", name="Get pairing code").click()
    code = page.locator('[data-testid="waqr-pair-code"]').first
    expect(code).to_be_visible(timeout=60_000)
    text = code.inner_text().strip()
    assert len(text.replace("-", "")) == 8
    shot(page, "pairing_code")
    stack.sim.enter_code(text)
    badge_state(page, "connected", 60_000)


def test_a_wrong_token_says_so_and_never_shows_a_token(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    with running_ui(tmp_path / "ui-wrong", stack.api.url, "w" * 40) as url:
        page.goto(url)
        error = page.locator(f'{ERROR}[data-kind="bad_token"]').first
        expect(error).to_be_visible(timeout=30_000)
        expect(error).to_contain_text("rejected the token")
        shot(page, "wrong_token")
        assert "w" * 40 not in page.content()
        assert TOKEN not in page.content()


def test_a_stopped_bridge_says_so(tmp_path: Path, page: Page) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with running_ui(tmp_path / "ui", dead, TOKEN) as url:
        page.goto(url)
        error = page.locator(f'{ERROR}[data-kind="bridge_unreachable"]').first
        expect(error).to_be_visible(timeout=30_000)
        expect(error).to_contain_text("Cannot reach the waqr bridge")
        shot(page, "bridge_unreachable")
        assert TOKEN not in page.content()
        assert "Traceback" not in page.content()


def test_a_link_that_stops_answering_is_shown_unstable_not_green(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url)
    badge_state(page, "qr_ready")
    stack.sim.scan(shown_qr(page))
    badge_state(page, "connected")
    stack.sim.faults(ignore_pings=True)  # WhatsApp stops answering the keepalive
    unstable = page.locator(f'{BADGE}[data-state="connected"][data-unstable="true"]')
    # Pings are 20-30 s apart with a 10 s deadline; the bot pushes the change.
    expect(unstable).to_be_visible(timeout=90_000)
    expect(unstable).to_contain_text("unstable")
    expect(page.get_by_text("not answering this link's keepalive pings")).to_be_visible()
    shot(page, "connected_unstable")


def test_the_connection_doctor_runs_from_the_page(stack: Stack, page: Page) -> None:
    page.goto(stack.ui_url)
    badge_state(page, "qr_ready")
    page.get_by_text("Diagnose the connection to WhatsApp").click()
    page.get_by_role("button", name="Run the connection doctor").click()
    report = page.locator('[data-testid="waqr-diagnosis"]')
    expect(report).to_contain_text("Verdict: every layer answered", timeout=60_000)
    expect(report).to_contain_text("noise")

    stack.sim.set_front_door_fault(FrontDoorFault.WS_FORBIDDEN)
    try:
        page.get_by_role("button", name="Run the connection doctor").click()
        expect(report).to_contain_text(
            "Verdict: websocket failed (websocket_forbidden)", timeout=60_000
        )
        expect(report).to_contain_text("Fix: ")
        shot(page, "diagnose")
    finally:
        stack.sim.set_front_door_fault(FrontDoorFault.NONE)
