"""The Messages section's words, without a browser: who wrote, when, what, and where a test
send is; everything a contact chose is literal text."""

from __future__ import annotations

from waqr.ui.messages import chat_label, furthest, inbox_html, message_time, receipt_of, sent_html

CHAT = "4915133334444@s.whatsapp.net"


def incoming(seq: int, text: str, **more: object) -> dict[str, object]:
    return {"seq": seq, "id": f"M{seq}", "chat": CHAT, "text": text, **more}


def test_a_persons_chat_is_shown_as_their_full_number_other_chats_as_they_are() -> None:
    assert chat_label(CHAT) == "+4915133334444"
    assert chat_label("4915133334444:12@s.whatsapp.net") == "+4915133334444"
    assert chat_label("120363025246125486@g.us") == "120363025246125486@g.us"
    assert chat_label("84823749283@lid") == "84823749283@lid"
    assert chat_label("٤٩١٥@s.whatsapp.net") == "٤٩١٥@s.whatsapp.net"  # ASCII digits only
    assert chat_label("") == ""


def test_a_message_time_is_utc_wall_time_or_nothing() -> None:
    assert message_time(1764190100.0) == "2025-11-26 20:48:20 UTC"
    assert message_time(0) == ""
    assert message_time(None) == ""
    assert message_time("soon") == ""
    assert message_time(1e20) == ""  # past any calendar


def test_the_inbox_shows_newest_first_with_number_name_and_time() -> None:
    html = inbox_html(
        [
            incoming(1, "first", pushName="Ada", timestamp=1764190100.0),
            incoming(2, "second"),
        ]
    )
    assert html.index('data-seq="2"') < html.index('data-seq="1"')
    assert "+4915133334444 · Ada · 2025-11-26 20:48:20 UTC" in html
    assert ">second</div>" in html


def test_an_empty_inbox_says_so() -> None:
    assert "No messages yet." in inbox_html([])


def test_what_a_contact_wrote_or_named_themselves_is_escaped() -> None:
    html = inbox_html([incoming(1, "<img src=x onerror=alert(1)> **bold**", pushName="<b>Eve")])
    assert "<img" not in html and "<b>Eve" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; **bold**" in html
    assert "&lt;b&gt;Eve" in html


def test_a_sent_message_is_where_its_latest_receipt_says() -> None:
    assert receipt_of({"status": "queued", "receipt": None}) == "queued"
    assert receipt_of({"status": "sending", "receipt": None}) == "sending"
    assert receipt_of({"status": "sent", "receipt": None}) == "sent"
    assert receipt_of({"status": "sent", "receipt": "delivered"}) == "delivered"
    assert receipt_of({"status": "sent", "receipt": "read"}) == "read"
    assert receipt_of({"status": "failed", "receipt": None, "error": "no such user"}) == "failed"
    assert receipt_of({}) == "queued"


def test_the_furthest_account_of_a_send_wins_and_a_failure_is_final() -> None:
    queued = {"id": "msg_1", "status": "queued", "receipt": None}
    delivered = {"id": "msg_1", "status": "sent", "receipt": "delivered"}
    read = {"id": "msg_1", "status": "sent", "receipt": "read"}
    failed = {"id": "msg_1", "status": "failed", "receipt": None, "error": "x"}
    assert furthest(queued, delivered) is delivered
    assert furthest(read, delivered) is read  # a late, older event does not step back
    assert furthest(queued, failed) is failed


def test_a_sent_line_carries_id_recipient_and_step_for_people_and_tests() -> None:
    html = sent_html({"id": "msg_1", "to": CHAT, "status": "sent", "receipt": "delivered"})
    assert 'data-id="msg_1"' in html and 'data-receipt="delivered"' in html
    assert "to +4915133334444: " in html
    failed = sent_html({"id": "msg_2", "to": CHAT, "status": "failed", "error": "<no route>"})
    assert 'data-receipt="failed"' in failed
    assert "failed: &lt;no route&gt;" in failed
