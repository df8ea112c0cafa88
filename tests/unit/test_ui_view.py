"""The UI's words and masks, without a browser."""

from __future__ import annotations

import httpx

from waqr.ui.client import error_for, unreachable
from waqr.ui.view import (
    account_lines,
    badge_html,
    countdown,
    countdown_html,
    error_html,
    reason_lines,
    safe_url,
    text_html,
)


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


def test_a_shown_url_carries_no_credentials() -> None:
    assert safe_url("https://ana:s3cret@bridge.example.org:8443/base?token=abc#x") == (
        "https://bridge.example.org:8443/base"
    )
    assert safe_url("http://[::1]:8000") == "http://[::1]:8000"


def test_outside_text_is_literal_not_markup() -> None:
    shown = text_html("waqr-reason", "[click](http://evil) <img src=x> **bold**")
    assert "<img" not in shown
    assert "&lt;img src=x&gt;" in shown
    assert "[click](http://evil)" in shown  # st.markdown is never used on it, so this stays


def test_the_countdown_starts_from_the_seconds_left_and_ticks_in_the_browser() -> None:
    shown = countdown_html(1000.0, now=985.2)
    assert 'data-seconds="15"' in shown
    assert 'data-expires-at="1000.0"' in shown
    assert "setInterval" in shown


def test_each_refusal_names_its_cause() -> None:
    def reply(status: int, body: dict[str, str], **headers: str) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    assert error_for(reply(401, {"error": "unauthorized"})).kind == "bad_token"
    throttled = error_for(reply(429, {"error": "too_many_failures"}, **{"Retry-After": "42"}))
    assert throttled.kind == "throttled"
    assert "42 s" in throttled.message
    assert "WA_QR_BRIDGE_TOKEN" in throttled.message
    bot = error_for(reply(503, {"error": "bot_unreachable", "detail": "x"}))
    assert bot.kind == "bot_down"
    assert "BOT_URL" in bot.message
    assert "`" not in bot.message
    gone = unreachable("http://u:p@127.0.0.1:9/?token=t", timed_out=False)
    assert "u:p" not in gone.message
    assert "token=t" not in gone.message


def test_the_doctors_verdict_and_report_read_as_plain_lines() -> None:
    from waqr.ui.view import doctor_lines, report_lines

    status = {
        "status": "disconnected",
        "lastDisconnectReason": {
            "message": "m",
            "diagnosis": {
                "healthy": False,
                "layer": "tcp",
                "cause": "tcp_refused",
                "detail": "connection refused by 127.0.0.1:9",
                "fixes": ["open egress to port 443"],
            },
        },
    }
    assert doctor_lines(status) == [
        "Connection doctor: tcp failed (tcp_refused)",
        "connection refused by 127.0.0.1:9",
        "Fix: open egress to port 443",
    ]
    assert doctor_lines({"lastDisconnectReason": {"diagnosis": {"healthy": True}}}) == []
    assert doctor_lines({"lastDisconnectReason": None}) == []

    report = {
        "healthy": False,
        "target": "web.whatsapp.com:443",
        "via": "http://127.0.0.1:3128",
        "verdict": {"layer": "proxy", "cause": "proxy_refused", "fixes": ["use another proxy"]},
        "steps": [
            {"layer": "dns", "outcome": "ok", "elapsedMs": 3.2, "detail": "resolved"},
            {"layer": "proxy", "outcome": "failed", "elapsedMs": 12, "detail": "403"},
            {"layer": "tls", "outcome": "skipped", "elapsedMs": 0, "detail": ""},
        ],
    }
    lines = report_lines(report)
    assert lines[0] == "Probed web.whatsapp.com:443 via http://127.0.0.1:3128"
    assert lines[1].split() == ["ok", "dns", "3", "ms", "resolved"]
    assert lines[2].split()[:2] == ["FAILED", "proxy"]
    assert lines[3].startswith("not probed tls")
    assert lines[-2:] == ["Verdict: proxy failed (proxy_refused)", "Fix: use another proxy"]
