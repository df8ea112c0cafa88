"""Secrets never reach a log line."""

from __future__ import annotations

import json
import logging

import pytest

from waqr.logs import JsonFormatter, log_event
from waqr.redact import mask_phone, redact

QR = "https://wa.me/settings/linked_devices#2@Xy9fQ1abcDEF,bm9pc2Vub2lzZQ==,aWRlbnQ=,YWR2c2VjcmV0,6"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"qr is {QR}", "Xy9fQ1abcDEF"),
        ("old style 2@Xy9fQ1abcDEF,bm9pc2U=,aWQ=,YWR2", "Xy9fQ1abcDEF"),
        ("paired 4915112345678@s.whatsapp.net", "4915112345678"),
        ("device 4915112345678:12@s.whatsapp.net", "4915112345678"),
        ("phone +4915112345678 entered", "4915112345678"),
        ("proxy http://alice:s3cret@proxy:3128 down", "s3cret"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnop"),
        ("pair code ABCD-EFGH shown", "ABCD-EFGH"),
        ("key 0123456789abcdefABCDEF0123456789abcdef+/ok", "0123456789abcdefABCDEF"),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_plain_operational_text_survives() -> None:
    text = "engine child started pid=4242 port 3100 after 2.5 s"
    assert redact(text) == text


def test_json_log_lines_scrub_fields_and_message() -> None:
    record = logging.LogRecord("waqr", logging.INFO, __file__, 1, "got %s", (QR,), None)
    record.phone = "+4915112345678"
    line = json.loads(JsonFormatter().format(record))
    assert "Xy9fQ1abcDEF" not in line["event"]
    assert "4915112345678" not in line["phone"]


def test_log_event_renames_fields_that_clash_with_logrecord(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        log_event(logging.getLogger("waqr.test"), "event", name="x", module="y")
    assert caplog.records[0].name_ == "x"  # type: ignore[attr-defined]


def test_mask_phone_keeps_only_the_ends() -> None:
    assert mask_phone("4915112345678") == "+49*********78"
