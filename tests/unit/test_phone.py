"""The phone rules: ASCII digits only, and the pattern the OpenAPI schema shows is never
stricter than what is accepted (a number the bridge takes always matches it)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waqr.api_models import PairCodeRequest
from waqr.errors import InvalidPhoneNumber
from waqr.phone import PHONE_PATTERN, parse_e164

ACCEPTED = ["+4915112345678", "+49 151 1234-5678", "(+49) 151.12345678", "+1 (415) 555-0100"]


@pytest.mark.parametrize("raw", ACCEPTED)
def test_accepted_numbers_match_the_documented_pattern(raw: str) -> None:
    assert parse_e164(raw).isascii()
    assert re.fullmatch(PHONE_PATTERN, raw)


@pytest.mark.parametrize(
    "raw",
    [
        "+٤٩١٥١١٢٣٤٥٦٧٨",  # Arabic-Indic digits
        "+４９１５１１２３４５６７８",  # fullwidth digits
        "+49\u00a0151\u00a012345678",  # no-break spaces
        "+49\u2007151\u200712345678",  # figure spaces
    ],
)
def test_digits_and_spaces_outside_ascii_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber, match="only digits 0-9"):
        parse_e164(raw)
    assert not re.fullmatch(PHONE_PATTERN, raw)


def test_the_schema_shows_the_pattern() -> None:
    schema = PairCodeRequest.model_json_schema()
    assert schema["properties"]["phone"]["pattern"] == PHONE_PATTERN


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=32) | st.from_regex(PHONE_PATTERN))
def test_whatever_is_accepted_matches_the_pattern(raw: str) -> None:
    try:
        parse_e164(raw)
    except InvalidPhoneNumber:
        return
    assert re.fullmatch(PHONE_PATTERN, raw), raw
