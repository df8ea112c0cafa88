"""Weak bridge tokens are refused at start-up; generated ones never are."""

from __future__ import annotations

import secrets

import pytest

from waqr.errors import ConfigError
from waqr.settings import load_settings
from waqr.token_strength import weakness


@pytest.mark.parametrize(
    "token",
    [
        "a" * 32,
        "0" * 32,
        "password" * 4,
        "changeme-changeme-changeme-chang",
        "your-token-here-your-token-here-",
        "abcdefghijklmnopqrstuvwxyz012345",
        "my-secret-token-for-waqr-bridge1",
        "aaaaaaaaaabbbbbbbbbbcdefghijklmn",
    ],
)
def test_weak_tokens_are_refused_without_being_repeated(token: str) -> None:
    assert weakness(token) is not None
    with pytest.raises(ConfigError) as caught:
        load_settings({"WA_QR_BRIDGE_TOKEN": token})
    message = str(caught.value)
    assert "WA_QR_BRIDGE_TOKEN" in message
    assert "secrets.token_urlsafe(32)" in message
    assert token not in message


def test_the_api_key_is_held_to_the_same_rule() -> None:
    with pytest.raises(ConfigError, match="WA_QR_API_KEY"):
        load_settings({"WA_QR_API_KEY": "password" * 4})


@pytest.mark.parametrize("generate", [secrets.token_urlsafe, secrets.token_hex])
def test_generated_tokens_always_pass(generate) -> None:
    refused = [t for t in (generate(32) for _ in range(2000)) if weakness(t) is not None]
    assert refused == []


@pytest.mark.parametrize(
    "token",
    [
        "a" * 32,
        "0" * 32,
        "password" * 4,
        "changeme-changeme-changeme-chang",
        "your-token-here-your-token-here-",
    ],
)
def test_the_bot_token_is_held_to_the_same_rule(token: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"WAQR_BOT_TOKEN": token})
    message = str(caught.value)
    assert "WAQR_BOT_TOKEN" in message
    assert "secrets.token_urlsafe(32)" in message
    assert token not in message


def test_a_generated_bot_token_is_accepted() -> None:
    token = secrets.token_urlsafe(32)
    assert load_settings({"WAQR_BOT_TOKEN": token}).bot_token == token
