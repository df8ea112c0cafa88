"""The UI's sign-in rules, without a browser."""

from __future__ import annotations

from argon2 import PasswordHasher

from waqr.ui.config import is_loopback
from waqr.ui.signin import PasswordThrottle, email_allowed, password_matches


def test_the_allow_list_takes_addresses_and_domains() -> None:
    allowed = ("ana@example.org", "@ops.example.org")
    assert email_allowed("Ana@Example.org", allowed)
    assert email_allowed("bo@ops.example.org", allowed)
    assert not email_allowed("bo@example.org", allowed)
    assert not email_allowed("bo@evil-ops.example.org", allowed)
    assert not email_allowed(None, allowed)
    assert not email_allowed("ana@example.org", ())  # an empty list admits nobody


def test_wrong_passwords_are_throttled_per_client_until_the_window_passes() -> None:
    throttle = PasswordThrottle(max_failures=3, window=60.0)
    for second in range(3):
        assert throttle.wait("1.2.3.4", now=100.0 + second) == 0
        throttle.fail("1.2.3.4", now=100.0 + second)
    assert throttle.wait("1.2.3.4", now=103.0) == 58
    assert throttle.wait("5.6.7.8", now=103.0) == 0  # another client is not held back
    assert throttle.wait("1.2.3.4", now=160.5) == 0  # the first failure left the window


def test_the_password_is_checked_against_its_argon2_hash() -> None:
    hashed = PasswordHasher().hash("correct horse battery staple")
    assert password_matches("correct horse battery staple", hashed)
    assert not password_matches("correct horse", hashed)
    assert not password_matches("anything", "not-a-hash")


def test_only_loopback_addresses_count_as_local() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.3.2.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.10")
