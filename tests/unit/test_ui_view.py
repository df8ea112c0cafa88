"""The UI's words and masks, without a browser."""

from __future__ import annotations

from waqr.ui.view import account_lines, badge_html, countdown, error_html, reason_lines


def test_badge_carries_the_state_for_people_and_for_tests() -> None:
    html = badge_html("qr_ready")
    assert 'data-state="qr_ready"' in html
    assert "Scan the QR code" in html


def test_badge_escapes_what_it_does_not_know() -> None:
    assert "<script>" not in badge_html("<script>")


def test_the_account_number_is_masked() -> None:
    lines = account_lines(
        {
            "account": {"jid": "4915112345678@s.whatsapp.net", "pushName": "Shop bot"},
            "since": "2026-11-24T19:31:57.105Z",
        }
    )
    assert lines[0] == "Number: +49*********78"
    assert "Name: Shop bot" in lines
    assert "Connected since: 2026-11-24 19:31:57 UTC" in lines


def test_reasons_are_plain_words_with_the_next_step() -> None:
    status = {
        "status": "failed",
        "lastDisconnectReason": {"message": "Outdated.", "hint": "Upgrade waqr."},
    }
    assert reason_lines(status) == ("Outdated.", "Upgrade waqr.")
    assert reason_lines({**status, "status": "connected"}) is None


def test_countdown_counts_from_when_the_qr_was_read() -> None:
    assert countdown(20.0, fetched_at=100.0, now=105.2) == 15
    assert countdown(20.0, fetched_at=100.0, now=130.0) == 0


def test_errors_are_escaped() -> None:
    assert "<b>" not in error_html("x", "<b>bold</b>")


def test_a_connected_link_failing_its_keepalive_is_not_shown_green() -> None:
    shown = badge_html("connected", unstable=True)
    assert "connection is unstable" in shown
    assert 'data-unstable="true"' in shown
    assert "#16a34a" not in shown
    assert 'data-unstable="false"' in badge_html("connected")
    assert 'data-unstable="false"' in badge_html("qr_ready", unstable=True)
