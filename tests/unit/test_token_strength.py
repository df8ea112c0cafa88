"""Weak tokens (WA_QR_BRIDGE_TOKEN, WA_QR_API_KEY, WAQR_BOT_TOKEN) are refused at start-up;
generated ones never are.

Why a run of 8 consecutive characters and not 6: a token_hex(32) token holds a run of 6 about
once in 33,000 (3 in 100,000 measured over 200,000 tokens), which this file's 2,000 generated
tokens would hit about one time in 16; a run of 8 was never seen."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from waqr.errors import ConfigError
from waqr.settings import load_settings
from waqr.token_strength import weakness

WEAK = [
    "a" * 32,
    "0" * 32,
    "password" * 4,
    "changeme-changeme-changeme-chang",
    "your-token-here-your-token-here-",
    "abcdefghijklmnopqrstuvwxyz012345",
    "my-secret-token-for-waqr-bridge1",
    "aaaaaaaaaabbbbbbbbbbcdefghijklmn",
]


@pytest.mark.parametrize("variable", ["WA_QR_BRIDGE_TOKEN", "WA_QR_API_KEY", "WAQR_BOT_TOKEN"])
@pytest.mark.parametrize("token", WEAK)
def test_weak_tokens_are_refused_without_being_repeated(variable: str, token: str) -> None:
    assert weakness(token) is not None
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: token})
    message = str(caught.value)
    assert variable in message
    assert "secrets.token_urlsafe(32)" in message
    assert token not in message


@pytest.mark.parametrize("generate", [secrets.token_urlsafe, secrets.token_hex])
def test_generated_tokens_always_pass(generate: Callable[[int], str]) -> None:
    refused = [t for t in (generate(32) for _ in range(2000)) if weakness(t) is not None]
    assert refused == []


def test_a_generated_bot_token_is_accepted() -> None:
    token = secrets.token_urlsafe(32)
    assert load_settings({"WAQR_BOT_TOKEN": token}).bot_token == token
