"""The page follows the bridge's push stream: an idle tab costs the bridge nothing, a QR
rotation still shows at once, and text from outside is shown as text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.integration.test_bridge import TOKEN, running_bridge
from tests.procs import free_port
from tests.ui.conftest import Stack, bridge_requests, running_stack, running_ui, shot
from tests.ui.fake_bridge import fake_bridge
from tests.ui.test_ui import badge_state, shown_qr

pytestmark = [pytest.mark.e2e]

MARKUP_REASON = "Proxy: [click here](http://evil.example/) **now** <img src=x onerror=alert(1)>"
MARKUP_HINT = "![tracker](http://evil.example/t.png) <a href='http://evil.example/'>fix</a>"
MARKUP_NAME = "**Boss** [pay me](http://evil.example/pay) <b>bold</b>"


def failed_status(message: str, hint: str) -> dict[str, object]:
    return {
        "status": "failed",
        "lastDisconnectReason": {"code": "proxy_refused", "message": message, "hint": hint},
        "account": None,
        "keepaliveFailing": False,
    }


@pytest.mark.timeout(180)
def test_markup_in_a_reason_or_push_name_is_shown_as_text(tmp_path: Path, page: Page) -> None:
    with (
        fake_bridge(failed_status(MARKUP_REASON, MARKUP_HINT)) as bridge,
        running_ui(tmp_path / "ui", bridge.url, TOKEN) as url,
    ):
        page.goto(url)
        badge_state(page, "failed")
        expect(page.locator('[data-testid="waqr-reason"]')).to_have_text(MARKUP_REASON)
        expect(page.locator('[data-testid="waqr-hint"]')).to_have_text(MARKUP_HINT)
        shot(page, "markup_reason")
        bridge.set(
            {
                "status": "connected",
                "since": "2026-11-26T20:00:00Z",
                "account": {"jid": "15550001111@s.whatsapp.net", "pushName": MARKUP_NAME},
                "keepaliveFailing": False,
            }
        )
        badge_state(page, "connected")
        expect(page.get_by_text(f"Name: {MARKUP_NAME}", exact=True)).to_be_visible()
        # Nothing from outside became a link, an image or bold text.
        assert page.locator('a[href^="http://evil.example"]').count() == 0
        assert page.locator('img[src="x"], img[src^="http://evil.example"]').count() == 0
        assert page.locator("strong", has_text="now").count() == 0
        assert page.locator("strong", has_text="Boss").count() == 0


@pytest.fixture
def slow_qr_stack(tmp_path: Path, sim_state: Path) -> Iterator[Stack]:
    """Six refs per batch: the QR stays up through the 60 s watch, rotating."""
    with running_stack(tmp_path, sim_state, refs=6) as stack:
        yield stack


@pytest.mark.timeout(420)
def test_an_open_page_costs_the_bridge_no_requests_yet_shows_each_rotation(
    slow_qr_stack: Stack, page: Page
) -> None:
    stack = slow_qr_stack
    page.goto(stack.ui_url)
    badge_state(page, "qr_ready")
    first = shown_qr(page)
    page.wait_for_timeout(2000)  # the feed's one QR fetch has completed
    before = bridge_requests(stack.api)
    # 60 s in qr_ready: watch the bot's QR and the page's, side by side.
    seen_rotation_lag: list[float] = []
    bot_qr, bot_changed_at = first, 0.0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = stack.bot.get("/qr").json().get("qr")  # the bot, not the bridge
        if current and current != bot_qr:
            bot_qr, bot_changed_at = current, time.monotonic()
        if bot_changed_at and shown_qr(page) == bot_qr:
            seen_rotation_lag.append(time.monotonic() - bot_changed_at)
            bot_changed_at = 0.0
        page.wait_for_timeout(250)
    badge_state(page, "qr_ready")
    assert bridge_requests(stack.api) == before, "the open page polled the bridge"
    assert seen_rotation_lag, "no QR rotation reached the page within 60 s"
    # Pushed, not polled: well under the 5 s fallback poll (a generous bound for a busy box).
    assert max(seen_rotation_lag) < 4.5
    countdown = page.locator('[data-testid="waqr-countdown"]')
    ticked = int(countdown.get_attribute("data-seconds") or 0)
    page.wait_for_timeout(2500)
    assert int(countdown.get_attribute("data-seconds") or 0) < ticked  # ticks in the browser

    stack.sim.scan(shown_qr(page))
    badge_state(page, "connected")
    page.wait_for_timeout(2000)
    before = bridge_requests(stack.api)
    page.wait_for_timeout(60_000)
    badge_state(page, "connected")
    assert bridge_requests(stack.api) == before, "the open page polled the bridge"


@pytest.mark.timeout(180)
def test_with_the_stream_down_the_page_polls_slowly_and_says_so(tmp_path: Path, page: Page) -> None:
    status = failed_status("plain", "plain")
    with fake_bridge(status) as bridge:
        bridge.closed = True  # the stream ends at once: only /status answers
        with running_ui(tmp_path / "ui", bridge.url, TOKEN) as url:
            page.goto(url)
            badge_state(page, "failed")
            expect(page.locator('[data-testid="waqr-polling"]')).to_contain_text(
                "checking every 5 s"
            )
            bridge.set({**status, "status": "logged_out"})
            badge_state(page, "logged_out", 20_000)


@pytest.mark.timeout(180)
def test_a_bridge_without_its_bot_names_bot_url(tmp_path: Path, page: Page) -> None:
    with (
        running_bridge(tmp_path / "api", f"http://127.0.0.1:{free_port()}") as api,
        running_ui(tmp_path / "ui", api.url, TOKEN) as url,
    ):
        page.goto(url)
        error = page.locator('[data-testid="waqr-error"][data-kind="bot_down"]').first
        expect(error).to_be_visible(timeout=30_000)
        expect(error).to_contain_text("check BOT_URL on the bridge and that waqr bot runs")
        assert "`" not in error.inner_text()
        shot(page, "bot_unreachable")
