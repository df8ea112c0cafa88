"""The Messages section in the browser, against the real stack: a contact's text appears as it
arrives, and a test message sent from the page reaches the contact exactly, its receipts shown
as they come. The operator's page shows the number; no log does."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_messaging import CONTACT, CONTACT_DIGITS, contact_inbox
from tests.procs import wait_until
from tests.ui.conftest import Stack, shot
from tests.ui.test_ui import ERROR, badge_state, shown_qr

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SENT = '[data-testid="waqr-sent"]'
FROM_CONTACT = "Guten Tag! <b>not bold</b> ✓"
FROM_PAGE = "Hallo from the waqr UI, ünïcode ✓"


def audit_records(stack: Stack) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for line in stack.api.logs().splitlines()
        if '"logger": "waqr.audit"' in line
    ]


def test_a_contacts_message_appears_and_a_test_send_reaches_them_with_its_receipts(
    stack: Stack, page: Page, tmp_path: Path
) -> None:
    page.goto(stack.ui_url)
    badge_state(page, "qr_ready")
    expect(page.get_by_text("once the account is linked")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_have_count(0)  # not before linking
    stack.sim.scan(shown_qr(page))
    badge_state(page, "connected")
    inbox = page.locator('[data-testid="waqr-inbox"]')
    expect(inbox).to_contain_text("No messages yet.")

    contact_inbox(stack.sim)  # the contact exists (and has its keys) before anyone writes
    wrote = httpx.post(
        f"{stack.sim.control}/contacts/{CONTACT_DIGITS}/send",
        json={"text": FROM_CONTACT},
        timeout=30,
    )
    assert wrote.status_code == 200, wrote.text
    shown = page.locator('[data-testid="waqr-message"]')
    expect(shown).to_have_count(1, timeout=60_000)
    expect(shown.locator('[data-testid="waqr-message-text"]')).to_have_text(FROM_CONTACT)
    expect(shown).to_contain_text(CONTACT)  # the operator sees who wrote, in full
    assert page.locator("b", has_text="not bold").count() == 0  # their text is text
    shot(page, "messages_incoming")

    # A recipient the bot refuses: its words on the page, no traceback, nothing sent.
    page.get_by_label("Send to (number with country code)").fill("nobody")
    page.get_by_label("Text").fill("x")
    page.get_by_role("button", name="Send").click()
    refusal = page.locator(f'{ERROR}[data-kind="rejected"]')
    expect(refusal).to_contain_text("to: use +<country code><number>")
    assert "Traceback" not in page.content()
    assert page.locator(SENT).count() == 0

    page.get_by_label("Send to (number with country code)").fill(CONTACT)
    page.get_by_label("Text").fill(FROM_PAGE)
    page.get_by_role("button", name="Send").click()
    sent = page.locator(SENT)
    expect(sent).to_have_count(1, timeout=30_000)
    expect(refusal).to_have_count(0)
    message_id = sent.get_attribute("data-id") or ""
    assert message_id.startswith("msg_")
    expect(sent).to_contain_text(message_id)
    received = wait_until(lambda: contact_inbox(stack.sim), 60)
    assert [m["text"] for m in received] == [FROM_PAGE]  # exactly that text, once
    expect(sent).to_have_attribute("data-receipt", "delivered", timeout=60_000)

    read = httpx.post(
        f"{stack.sim.control}/contacts/{CONTACT_DIGITS}/read",
        json={"id": received[0]["id"]},
        timeout=30,
    )
    assert read.status_code == 200, read.text
    expect(sent).to_have_attribute("data-receipt", "read", timeout=60_000)
    expect(sent).to_contain_text("read")
    shot(page, "messages_sent")

    sends = [r for r in audit_records(stack) if r["action"] == "send_message"]
    assert [(r["user"], r["outcome"]) for r in sends] == [("local", 422), ("local", 202)]
    (ui_log,) = (tmp_path / "ui").glob("ui-*.log")  # where the stack fixture runs the UI
    for log in (stack.api.logs(), stack.bot.logs(), ui_log.read_text()):
        assert CONTACT_DIGITS not in log
        assert FROM_PAGE not in log
