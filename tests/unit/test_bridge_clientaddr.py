"""Who the bridge thinks is asking: the peer, unless the peer is a trusted proxy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from waqr.bridge import auth
from waqr.bridge.auth import FailureLimiter
from waqr.bridge.clientaddr import TrustedProxies, normalise_networks
from waqr.errors import ConfigError
from waqr.settings import load_settings


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    proxies = TrustedProxies("")
    assert proxies.client_of("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"


def test_a_peer_that_is_not_a_trusted_proxy_cannot_speak_for_anyone() -> None:
    proxies = TrustedProxies("10.0.0.0/8")
    assert proxies.client_of("198.51.100.4", ["203.0.113.7"]) == "198.51.100.4"


def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() -> None:
    proxies = TrustedProxies("10.0.0.0/8, 192.168.1.1")
    # The caller wrote "1.2.3.4" itself; our proxies appended 203.0.113.7 and 192.168.1.1.
    forwarded = ["1.2.3.4, 203.0.113.7", "192.168.1.1"]
    assert proxies.client_of("10.0.0.2", forwarded) == "203.0.113.7"


def test_a_request_made_by_the_proxy_itself_is_the_proxys() -> None:
    proxies = TrustedProxies("10.0.0.0/8")
    assert proxies.client_of("10.0.0.2", []) == "10.0.0.2"
    assert proxies.client_of("10.0.0.2", ["10.0.0.3"]) == "10.0.0.2"


def test_ipv6_proxies_are_understood() -> None:
    proxies = TrustedProxies("::1, fd00::/8")
    assert proxies.client_of("::1", ["2001:db8::7, fd00::1"]) == "2001:db8::7"


def test_the_setting_names_an_entry_that_is_not_an_address() -> None:
    assert normalise_networks(" 10.0.0.1 , 192.168.0.0/16,") == "10.0.0.1/32,192.168.0.0/16"
    with pytest.raises(ConfigError, match="WAQR_TRUSTED_PROXIES.*proxy.local"):
        load_settings({"WAQR_TRUSTED_PROXIES": "10.0.0.1,proxy.local"})


def test_a_client_whose_failures_are_older_than_the_window_is_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=lambda: clock.now))
    limiter = FailureLimiter(max_failures=3, window=60)
    limiter.fail("198.51.100.1")
    clock.now += 61
    limiter.fail("198.51.100.2")
    assert len(limiter) == 1
