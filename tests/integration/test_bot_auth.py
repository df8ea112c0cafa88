"""The bot's own token, with real processes on loopback: every route but /health needs it
when it is set, the bridge sends it, and the bot refuses to listen beyond loopback without
it; and the data directory it keeps them in is private, or the bot says in one line why it
cannot use it. The engine's only route out is a proxy that refuses everything."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.integration.test_bridge import BEARER, REFUSED, running_bridge
from tests.procs import MisbehavingProxy, ServiceProcess, free_port, running_bot
from waqr.bot.auth import BotTokenAuth
from waqr.cli import _is_loopback

pytestmark = pytest.mark.timeout(60)

BOT_TOKEN = "hQ3vUo_0xGm7Zq2Lb9cRwT4yNp8KdE1sAjF6iVe5XrC"


def test_every_bot_route_but_health_needs_the_token(tmp_path: Path) -> None:
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(tmp_path / "data", WA_PROXY=proxy.url, WAQR_BOT_TOKEN=BOT_TOKEN) as bot,
    ):
        assert bot.get("/health").status_code == 200
        for method, path in (
            ("GET", "/status"),
            ("GET", "/qr"),
            ("POST", "/logout"),
            ("POST", "/reconnect"),
            ("GET", "/openapi.json"),
        ):
            missing = httpx.request(method, bot.url + path, timeout=10)
            assert missing.status_code == 401, path
            assert missing.json()["error"] == "unauthorized"
            wrong = httpx.request(
                method, bot.url + path, headers={"Authorization": "Bearer nope"}, timeout=10
            )
            assert wrong.status_code == 401, path
        good = httpx.get(
            bot.url + "/status", headers={"Authorization": f"Bearer {BOT_TOKEN}"}, timeout=10
        )
        assert good.status_code == 200
        assert BOT_TOKEN not in bot.logs()


def test_the_bridge_sends_the_bot_token(tmp_path: Path) -> None:
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(tmp_path / "data", WA_PROXY=proxy.url, WAQR_BOT_TOKEN=BOT_TOKEN) as bot,
        running_bridge(tmp_path / "api", bot.url, WAQR_BOT_TOKEN=BOT_TOKEN) as api,
    ):
        assert api.get("/admin/wa/status", headers=BEARER).status_code == 200
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(tmp_path / "data2", WA_PROXY=proxy.url, WAQR_BOT_TOKEN=BOT_TOKEN) as bot,
        running_bridge(tmp_path / "api2", bot.url) as api,
    ):
        refused = api.get("/admin/wa/status", headers=BEARER)  # a bridge without the token
        assert refused.status_code == 502  # not 401: the caller's own token is fine
        assert refused.json()["error"] == "bot_token_refused"


def test_the_bot_refuses_to_listen_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WAQR_BOT_TOKEN"}
    env.update(
        WAQR_BOT_HOST="0.0.0.0",
        WAQR_BOT_PORT=str(free_port()),
        WAQR_DATA_DIR=str(tmp_path / "data"),
    )
    refused = subprocess.run(
        [sys.executable, "-m", "waqr.cli", "bot"], env=env, capture_output=True, timeout=30
    )
    assert refused.returncode == 2
    assert b"WAQR_BOT_HOST=0.0.0.0 is not a loopback address" in refused.stderr
    assert b"WAQR_BOT_TOKEN" in refused.stderr
    assert b"Traceback" not in refused.stderr


def test_with_a_token_the_bot_may_listen_beyond_loopback(tmp_path: Path) -> None:
    with MisbehavingProxy(REFUSED) as proxy:
        bot = ServiceProcess(
            tmp_path / "data",
            env={"WAQR_BOT_HOST": "0.0.0.0", "WAQR_BOT_TOKEN": BOT_TOKEN, "WA_PROXY": proxy.url},
        ).start()  # reached on 127.0.0.1 only
        try:
            assert bot.get("/health").status_code == 200
        finally:
            bot.stop()


def test_a_request_without_the_token_is_refused_before_its_body_is_read(
    tmp_path: Path,
) -> None:
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(tmp_path / "data", WA_PROXY=proxy.url, WAQR_BOT_TOKEN=BOT_TOKEN) as bot,
        socket.create_connection(("127.0.0.1", bot.port), timeout=5) as sock,
    ):
        # A megabyte announced and never sent: an answer at all proves nobody waited for it.
        sock.sendall(
            b"POST /pair-code HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n"
        )
        reply = b""
        while not reply.endswith(b"}") and (chunk := sock.recv(4096)):
            reply += chunk
    head, _, body = reply.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 401")
    assert "www-authenticate: bearer" in head.lower()
    assert json.loads(body)["error"] == "unauthorized"


# --- the data directory ----------------------------------------------------------------------


def test_a_new_data_dir_is_created_for_the_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(tmp_path / "logs", WA_PROXY=proxy.url, WAQR_DATA_DIR=str(data_dir)),
    ):
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((data_dir / "wa-auth").stat().st_mode) == 0o700


def test_an_unusable_data_dir_is_one_line_naming_the_path(tmp_path: Path) -> None:
    # The tests run as root, for whom chmod 0500 does not stop writes; a regular file where a
    # directory must be fails for everyone (NotADirectoryError), through the same path.
    (tmp_path / "afile").write_text("not a directory")
    data_dir = tmp_path / "afile" / "data"
    env = {k: v for k, v in os.environ.items() if k != "WAQR_BOT_TOKEN"}
    env.update(WAQR_BOT_PORT=str(free_port()), WAQR_DATA_DIR=str(data_dir))
    refused = subprocess.run(
        [sys.executable, "-m", "waqr.cli", "bot"], env=env, capture_output=True, timeout=30
    )
    assert refused.returncode == 2
    message = refused.stderr.decode()
    assert message.count("\n") == 1
    assert f"WAQR_DATA_DIR {data_dir} cannot be used" in message
    assert "Traceback" not in message


async def test_a_websocket_without_the_token_is_closed_before_the_handshake() -> None:
    # The bot has no WebSocket route yet; the guard must not wave one through when it gets one.
    reached: list[object] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["headers"])

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def connect(headers: list[tuple[bytes, bytes]]) -> list[Message]:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "websocket", "path": "/ws", "headers": headers}
        await BotTokenAuth(inner, tokens=[BOT_TOKEN])(scope, receive, send)
        return sent

    assert await connect([]) == [{"type": "websocket.close", "code": 1008}]
    assert reached == []
    assert await connect([(b"authorization", f"Bearer {BOT_TOKEN}".encode())]) == []
    assert len(reached) == 1


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),  # all of 127.0.0.0/8
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("bot.internal", False),  # a name may resolve anywhere
    ],
)
def test_which_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback
