"""Phone numbers for linking by code: +E.164 in, digits out, with a reason when malformed."""

from __future__ import annotations

import re

import phonenumbers

from waqr.errors import InvalidPhoneNumber

# ASCII only, deliberately: str.isdigit() and \s also take Arabic-Indic or fullwidth digits and
# Unicode spaces, which the engine then refuses (a 503 for what is the caller's mistake).
_SEPARATORS = re.compile(r"[ \t().-]")
# What the OpenAPI schema documents: a '+', ASCII digits and separators. Necessary, not enough:
# 8 to 15 digits and a possible number for the country are checked by parse_e164.
PHONE_PATTERN = r"^[ \t().-]*\+[0-9 \t().-]*$"


def parse_e164(raw: str) -> str:
    """Return the digits of an international number (no '+'), or raise InvalidPhoneNumber
    saying what is wrong. Spaces, dots, dashes and brackets are tolerated."""
    compact = _SEPARATORS.sub("", raw)
    if not compact:
        raise InvalidPhoneNumber("phone number is empty; use +<country code><number>")
    if not compact.startswith("+"):
        raise InvalidPhoneNumber(
            "phone number must start with '+' and the country code, e.g. +4915112345678"
        )
    digits = compact[1:]
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidPhoneNumber("phone number may contain only digits 0-9 after the '+'")
    if not 8 <= len(digits) <= 15:
        raise InvalidPhoneNumber(
            f"phone number has {len(digits)} digits; E.164 numbers have 8 to 15"
        )
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidPhoneNumber("phone number has an unknown country code") from None
        raise InvalidPhoneNumber("phone number cannot be parsed") from None
    if not phonenumbers.is_possible_number(number):
        reason = phonenumbers.is_possible_number_with_reason(number)
        words = {
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
            phonenumbers.ValidationResult.TOO_SHORT: "too short for its country",
            phonenumbers.ValidationResult.TOO_LONG: "too long for its country",
        }.get(reason, "not a possible number for its country")
        raise InvalidPhoneNumber(f"phone number is {words}")
    return digits
