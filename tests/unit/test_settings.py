"""Settings: defaults, environment names, and failures that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from waqr.errors import ConfigError
from waqr.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("WA_PROXY", "WAQR_BOT_PORT", "WAQR_DATA_DIR", "WAQR_BOT_HOST", "WAQR_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_ones() -> None:
    settings = load_settings()
    assert (settings.bot_host, settings.bot_port) == ("127.0.0.1", 3100)
    assert settings.data_dir == Path("./data")
    assert settings.wa_proxy is None
    assert settings.auth_dir == Path("./data/wa-auth")
    assert settings.bot_token is None  # optional on loopback; `waqr up` generates one


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WAQR_BOT_PORT=4100\n")
    monkeypatch.setenv("WA_PROXY", "socks5://user:pw@127.0.0.1:1080")
    settings = load_settings()
    assert settings.bot_port == 4100
    assert settings.wa_proxy == "socks5://user:pw@127.0.0.1:1080"


def test_cli_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAQR_BOT_PORT", "4100")
    assert load_settings({"WAQR_BOT_PORT": 4200}).bot_port == 4200


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("ftp://h:1", "scheme must be one of"),
        ("http://:3128", "a host is required"),
        ("http://h", "a port is required"),
        ("http://h:99999", "port must be a number"),
        ("http://h:3128/path", "only scheme://"),
    ],
)
def test_malformed_proxy_is_refused_naming_wa_proxy(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("WA_PROXY", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "WA_PROXY" in str(caught.value)
    assert says in str(caught.value)


def test_backoff_cap_must_not_undercut_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAQR_RECONNECT_BACKOFF_MIN", "10")
    monkeypatch.setenv("WAQR_RECONNECT_BACKOFF_MAX", "5")
    with pytest.raises(ConfigError, match="WAQR_RECONNECT_BACKOFF_MAX"):
        load_settings()


def test_a_short_bot_token_is_refused_naming_the_variable_not_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"WAQR_BOT_TOKEN": "Zq8-shortButRandom"})
    assert "WAQR_BOT_TOKEN" in str(caught.value)
    assert "at least 32 characters" in str(caught.value)
    assert "Zq8-shortButRandom" not in str(caught.value)


@pytest.mark.parametrize("server", ["BOT", "API"])
def test_a_tls_certificate_needs_its_key(server: str, tmp_path: Path) -> None:
    cert = tmp_path / "server.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({f"WAQR_{server}_TLS_CERT": str(cert)})
    assert f"WAQR_{server}_TLS_CERT and WAQR_{server}_TLS_KEY must be set together" in str(
        caught.value
    )
    both = load_settings(
        {f"WAQR_{server}_TLS_CERT": str(cert), f"WAQR_{server}_TLS_KEY": str(cert)}
    )
    assert (both.bot_tls if server == "BOT" else both.api_tls) == (cert, cert)


def test_a_missing_tls_or_ca_file_is_refused_naming_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(ConfigError) as caught:
        load_settings({"WAQR_BOT_CA_FILE": str(missing)})
    assert f"WAQR_BOT_CA_FILE: {missing} is not a readable file" in str(caught.value)


def test_webhook_urls_need_a_secret_and_http_urls() -> None:
    with pytest.raises(ConfigError, match="WAQR_WEBHOOK_SECRET"):
        load_settings({"WAQR_WEBHOOK_URLS": "http://127.0.0.1:9/hook"})
    with pytest.raises(ConfigError, match="http"):
        load_settings({"WAQR_WEBHOOK_URLS": "ftp://x", "WAQR_WEBHOOK_SECRET": "s" * 40})
    with pytest.raises(ConfigError, match="unknown event"):
        load_settings({"WAQR_WEBHOOK_EVENTS": "message,typing"})
    settings = load_settings(
        {"WAQR_WEBHOOK_URLS": " http://a/1 , https://b/2", "WAQR_WEBHOOK_SECRET": "s" * 40}
    )
    assert settings.webhook_url_list == ("http://a/1", "https://b/2")
