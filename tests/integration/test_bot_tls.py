"""The bot on another host, played by two real processes on loopback: the bot serves HTTPS
with a certificate from a private CA and wants its token, the bridge checks that certificate
against WAQR_BOT_CA_FILE and sends the token (and serves HTTPS itself). Each way it can go
wrong is a clear answer from the bridge, never a 500."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.test_bot_auth import BOT_TOKEN
from tests.integration.test_bridge import BEARER, REFUSED, running_bridge
from tests.pki import issue_server_cert, make_authority
from tests.procs import MisbehavingProxy, ServiceProcess, free_port, running_bot

pytestmark = pytest.mark.timeout(90)

WRONG_BOT_TOKEN = "Zp4T-qLw8sVb2nYc7xRk1mHd5eJg0aUf3oIt6yQr9Ws"


@dataclass(frozen=True)
class ServerFiles:
    ca: Path  # the CA certificate that signed ``cert``
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def make_ca_and_server_cert(directory: Path, label: str) -> ServerFiles:
    """A private CA and a certificate for 127.0.0.1 it signed, as PEM files."""
    authority = make_authority(directory, f"waqr test CA {label}")
    cert, key = issue_server_cert(directory, authority)
    return ServerFiles(authority.path, cert, key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[ServerFiles, ServerFiles]:
    """The bot's PKI, and another CA with its own certificate (trusted by nobody here)."""
    root = tmp_path_factory.mktemp("pki")
    return make_ca_and_server_cert(root / "ours", "ours"), make_ca_and_server_cert(
        root / "other", "other"
    )


@pytest.fixture(scope="module")
def tls_bot(
    tmp_path_factory: pytest.TempPathFactory, pki: tuple[ServerFiles, ServerFiles]
) -> Iterator[ServiceProcess]:
    """A bot with a token and a certificate, reached at https://127.0.0.1 (its WhatsApp route
    is a proxy that refuses everything)."""
    ours, _ = pki
    with MisbehavingProxy(REFUSED) as proxy:
        bot = ServiceProcess(
            tmp_path_factory.mktemp("tls-bot") / "data",
            env={
                "WA_PROXY": proxy.url,
                "WAQR_BOT_TOKEN": BOT_TOKEN,
                "WAQR_BOT_TLS_CERT": str(ours.cert),
                "WAQR_BOT_TLS_KEY": str(ours.key),
            },
            scheme="https",
            verify=ours.context(),
        ).start()
        try:
            yield bot
        finally:
            bot.stop()


def test_tls_and_token_work_end_to_end(
    tmp_path: Path, tls_bot: ServiceProcess, pki: tuple[ServerFiles, ServerFiles]
) -> None:
    ours, _ = pki
    bridge = ServiceProcess(
        tmp_path / "api",
        command="api",
        env={
            "WA_QR_BRIDGE_TOKEN": BEARER["Authorization"].removeprefix("Bearer "),
            "BOT_URL": tls_bot.url,
            "WAQR_BOT_TOKEN": BOT_TOKEN,
            "WAQR_BOT_CA_FILE": str(ours.ca),
            "WAQR_API_TLS_CERT": str(ours.cert),
            "WAQR_API_TLS_KEY": str(ours.key),
        },
        scheme="https",
        verify=ours.context(),
    ).start()
    try:
        status = bridge.get("/admin/wa/status", headers=BEARER)
        assert status.status_code == 200, status.text
        assert status.json()["status"] in ("starting", "connecting", "disconnected", "qr_ready")
        # The bridge speaks HTTPS only: plain HTTP on its port gets no API.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{bridge.port}/healthz", timeout=5)
    finally:
        bridge.stop()
    assert BOT_TOKEN not in bridge.logs()


def test_the_tls_bot_refuses_callers_without_its_token(tls_bot: ServiceProcess) -> None:
    assert tls_bot.get("/health").status_code == 200
    assert tls_bot.get("/status").status_code == 401
    assert (
        tls_bot.get("/qr", headers={"Authorization": f"Bearer {WRONG_BOT_TOKEN}"}).status_code
        == 401
    )
    assert (
        tls_bot.get("/status", headers={"Authorization": f"Bearer {BOT_TOKEN}"}).status_code == 200
    )
    # ...and it speaks HTTPS only.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_bot.port}/health", timeout=5)


@pytest.mark.parametrize("bot_token", [None, WRONG_BOT_TOKEN], ids=["no-token", "wrong-token"])
def test_a_bridge_the_bot_refuses_answers_502_bot_token_refused(
    tmp_path: Path,
    tls_bot: ServiceProcess,
    pki: tuple[ServerFiles, ServerFiles],
    bot_token: str | None,
) -> None:
    ours, _ = pki
    env = {"WAQR_BOT_CA_FILE": str(ours.ca)}
    if bot_token is not None:
        env["WAQR_BOT_TOKEN"] = bot_token
    with running_bridge(tmp_path / "api", tls_bot.url, **env) as bridge:
        refused = bridge.get("/admin/wa/status", headers=BEARER)
    assert refused.status_code == 502
    assert refused.json()["error"] == "bot_token_refused"


@pytest.mark.parametrize("trust", ["other-ca", "system-cas"])
def test_an_untrusted_bot_certificate_is_a_clear_502(
    tmp_path: Path,
    tls_bot: ServiceProcess,
    pki: tuple[ServerFiles, ServerFiles],
    trust: str,
) -> None:
    _, other = pki
    env = {"WAQR_BOT_TOKEN": BOT_TOKEN}
    if trust == "other-ca":
        env["WAQR_BOT_CA_FILE"] = str(other.ca)
    with running_bridge(tmp_path / "api", tls_bot.url, **env) as bridge:
        refused = bridge.get("/admin/wa/status", headers=BEARER)
        qr = bridge.get("/admin/wa/qr", headers=BEARER)
    assert refused.status_code == 502, refused.text
    body = refused.json()
    assert body["error"] == "bot_tls_failed"
    assert "certificate" in body["detail"]
    assert "WAQR_BOT_CA_FILE" in body["detail"]
    assert qr.status_code == 502
    assert qr.json()["error"] == "bot_tls_failed"


def test_a_bridge_speaking_https_to_a_plain_bot_says_tls_failed(
    tmp_path: Path, pki: tuple[ServerFiles, ServerFiles]
) -> None:
    ours, _ = pki
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(tmp_path / "bot", WA_PROXY=proxy.url) as bot,
        running_bridge(
            tmp_path / "api",
            bot.url.replace("http://", "https://"),
            WAQR_BOT_CA_FILE=str(ours.ca),
        ) as bridge,
    ):
        refused = bridge.get("/admin/wa/status", headers=BEARER)
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"] == "bot_tls_failed"


@pytest.mark.parametrize(
    ("command", "variables", "says"),
    [
        ("bot", ("WAQR_BOT_TLS_CERT", "WAQR_BOT_TLS_KEY"), "WAQR_BOT_TLS_CERT/WAQR_BOT_TLS_KEY"),
        ("api", ("WAQR_API_TLS_CERT", "WAQR_API_TLS_KEY"), "WAQR_API_TLS_CERT/WAQR_API_TLS_KEY"),
        ("api", ("WAQR_BOT_CA_FILE",), "WAQR_BOT_CA_FILE cannot be used"),
    ],
)
def test_a_file_that_is_not_pem_stops_start_up_in_one_line(
    tmp_path: Path, command: str, variables: tuple[str, ...], says: str
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAQR_")}
    env.update(
        WAQR_DATA_DIR=str(tmp_path / "data"),
        WAQR_BOT_PORT=str(free_port()),
        WAQR_API_PORT=str(free_port()),
        WA_QR_BRIDGE_TOKEN=BEARER["Authorization"].removeprefix("Bearer "),
        WA_PROXY="http://127.0.0.1:9",
        **dict.fromkeys(variables, str(not_pem)),
    )
    refused = subprocess.run(
        [sys.executable, "-m", "waqr.cli", command], env=env, capture_output=True, timeout=30
    )
    assert refused.returncode == 2
    message = refused.stderr.decode()
    assert says in message
    assert message.count("\n") == 1
    assert "Traceback" not in message
