"""`waqr status` and `waqr link` in a real pseudo-terminal against a real bridge process, in
front of a stand-in bot where the bot must do something on cue (push a rotation the polled
routes do not show, lose its event stream, need attention), or in front of nothing at all.
The engine and the simulated phone are in tests/e2e/test_operator_cli.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyte
import pytest

from tests.integration.test_bridge import OTHER_TOKEN, TOKEN, StandInBot, running_bridge
from tests.procs import ServiceProcess, free_port, wait_until
from tests.terminal import Terminal, drawn_qr, qr_lines, run

pytestmark = pytest.mark.timeout(120)

FIRST = "2@" + "FirstCode0" * 10 + ",bm9pc2Uta2V5LWJhc2U2NA==,aWRlbnRpdHkta2V5,YWR2LXNlY3JldA=="
SECOND = FIRST.replace("FirstCode0", "SecondCode")
QR_READY: dict[str, Any] = {"status": "qr_ready", "connected": False, "since": None}
CONNECTED: dict[str, Any] = {
    "status": "connected",
    "connected": True,
    "account": {"jid": "15550001111:3@s.whatsapp.net", "pushName": "Ops"},
}
FAILED: dict[str, Any] = {
    "status": "failed",
    "connected": False,
    "lastDisconnectReason": {
        "code": "client_outdated",
        "message": "WhatsApp rejected the client as outdated (405).",
        "hint": "Upgrade waqr to a release with a newer engine.",
        "fix": "pip install -U waqr",
    },
}


def qr_body(payload: str) -> dict[str, Any]:
    return {"status": "qr_ready", "qr": payload, "expires_in": 50.0}


def env_for(url: str, token: str = TOKEN) -> dict[str, str]:
    return {"WA_QR_API_URL": url, "WA_QR_BRIDGE_TOKEN": token}


@pytest.fixture
def bridge_and_bot(tmp_path: Path) -> Iterator[tuple[ServiceProcess, StandInBot]]:
    with StandInBot() as bot, running_bridge(tmp_path / "api", bot.url) as api:
        bot.status = dict(QR_READY)
        bot.qr = qr_body(FIRST)
        wait_until(lambda: bot.count("GET /events") >= 1, 10)  # the bridge follows the bot
        yield api, bot


def test_link_follows_the_push_stream(
    bridge_and_bot: tuple[ServiceProcess, StandInBot], tmp_path: Path
) -> None:
    api, bot = bridge_and_bot
    terminal = Terminal(["link"], env_for(api.url), tmp_path)

    def pushing(kind: str, data: dict[str, Any]) -> Callable[[Terminal], None]:
        # Sent again every second: the command subscribes to the bridge's stream only after
        # its first QR is drawn, and an event sent before that reaches nobody.
        last = 0.0

        def push(_: Terminal) -> None:
            nonlocal last
            if time.monotonic() - last >= 1:
                bot.push(kind, data)
                last = time.monotonic()

        return push

    try:
        terminal.wait_for(lambda t: drawn_qr(t.screen) == FIRST, 30)
        # Pushed only: GET /qr still serves the first code (far from its expiry), GET /status
        # still says qr_ready.
        push = pushing("qr", qr_body(SECOND))
        terminal.wait_for(lambda t: push(t) or drawn_qr(t.screen) == SECOND, 20)
        push = pushing("state", CONNECTED)
        terminal.wait_for(lambda t: push(t) or "Linked:" in t.text, 20)
        assert terminal.exit_code(15) == 0
        assert "Linked: WhatsApp is connected as +15*******11 (Ops)." in terminal.text
        assert qr_lines(terminal.screen) == []
    finally:
        terminal.close()


def test_link_polls_when_the_bridge_hears_nothing_from_the_bot(tmp_path: Path) -> None:
    with StandInBot() as bot:
        bot.hold("/events")  # the bridge's relay never gets the bot's stream
        bot.status = dict(QR_READY)
        bot.qr = qr_body(FIRST)
        with running_bridge(tmp_path / "api", bot.url) as api:
            terminal = Terminal(["link"], env_for(api.url), tmp_path)
            try:
                terminal.wait_for(lambda t: drawn_qr(t.screen) == FIRST, 30)
                # No push can carry it, and the first code is far from expiry: only the
                # watcher's polling can bring it to the screen.
                bot.qr = qr_body(SECOND)
                terminal.wait_for(lambda t: drawn_qr(t.screen) == SECOND, 15)
                bot.status = dict(CONNECTED)
                assert terminal.exit_code(15) == 0
            finally:
                terminal.close()


def test_a_session_that_needs_attention_says_why_and_what_to_do(
    bridge_and_bot: tuple[ServiceProcess, StandInBot], tmp_path: Path
) -> None:
    api, bot = bridge_and_bot
    bot.status = dict(FAILED)
    bot.qr = None
    code, text = run(["status"], env_for(api.url), tmp_path)
    assert code == 1, text
    assert "WhatsApp:  Needs your attention [failed]" in text
    assert "Reason:    WhatsApp rejected the client as outdated (405)." in text
    assert "Next step: Upgrade waqr to a release with a newer engine." in text
    assert "Fix:       pip install -U waqr" in text
    assert "Code:      client_outdated" in text
    code, text = run(["link"], env_for(api.url), tmp_path)
    assert code == 1, text
    assert "needs your attention" in text and "Fix:       pip install -U waqr" in text


def test_a_wrong_token_is_refused_plainly_with_exit_2(
    bridge_and_bot: tuple[ServiceProcess, StandInBot], tmp_path: Path
) -> None:
    api, _ = bridge_and_bot
    # A well-formed token the bridge does not accept (it takes TOKEN and OTHER_TOKEN).
    wrong = OTHER_TOKEN[::-1]
    for args in (["status"], ["link"], ["link", "--phone", "+4915112345678"]):
        code, text = run(args, env_for(api.url, wrong), tmp_path)
        assert code == 2, (args, text)
        assert "The bridge rejected the token: check WA_QR_BRIDGE_TOKEN." in text
        assert wrong not in text
    code, text = run(["status", "--json"], env_for(api.url, wrong), tmp_path, raw=True)
    assert code == 2
    assert json.loads(text)["error"] == "bad_token"


def test_a_bridge_that_is_down_is_named_with_exit_2(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for args in (["status"], ["link"]):
        code, text = run(args, env_for(url), tmp_path)
        assert code == 2, (args, text)
        assert f"Cannot reach the waqr bridge at {url}. Is waqr api running" in text
    code, text = run(["status", "--json"], env_for(url), tmp_path, raw=True)
    assert code == 2
    assert json.loads(text)["error"] == "bridge_unreachable"


def test_a_bot_that_is_down_means_not_connected(tmp_path: Path) -> None:
    bot_url = f"http://127.0.0.1:{free_port()}"  # no bot
    with running_bridge(tmp_path / "api", bot_url) as api:
        code, text = run(["status"], env_for(api.url), tmp_path)
        assert code == 1, text
        assert "cannot reach the WhatsApp bot: check BOT_URL on the bridge" in text


def test_settings_problems_are_named_before_anything_is_asked(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, text = run(["status"], {"WA_QR_API_URL": url, "WA_QR_BRIDGE_TOKEN": ""}, tmp_path)
    assert code == 2
    assert "WA_QR_BRIDGE_TOKEN is not set" in text
    code, text = run(["link", "--phone", "4915112345678"], env_for(url), tmp_path)
    assert code == 2
    assert "phone number must start with '+'" in text


def test_ctrl_c_while_a_pairing_code_is_on_its_way_exits_at_once(
    bridge_and_bot: tuple[ServiceProcess, StandInBot], tmp_path: Path
) -> None:
    api, bot = bridge_and_bot
    bot.hold("/pair-code")  # the bot is still getting an engine ready
    terminal = Terminal(["link", "--phone", "+4915112345678"], env_for(api.url), tmp_path)
    try:
        terminal.wait_for(lambda t: "Asking WhatsApp for a pairing code" in t.text, 30)
        terminal.interrupt()
        # Well inside the bridge's 90 s wait for the bot: the command does not sit it out.
        assert terminal.exit_code(20) == 130
        assert "interrupted" in terminal.text
    finally:
        terminal.close()
        bot.release("/pair-code")


def test_without_a_terminal_the_output_is_plain_and_timeout_gives_up(
    bridge_and_bot: tuple[ServiceProcess, StandInBot], tmp_path: Path
) -> None:
    api, _ = bridge_and_bot
    done = subprocess.run(
        [sys.executable, "-m", "waqr.cli", "link", "--timeout", "3"],
        env={**os.environ, **env_for(api.url)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "\x1b" not in done.stdout  # no escape codes into a pipe or a log
    assert done.stdout.count("Waiting for the scan") == 1
    assert done.stdout.rstrip().endswith("waqr: not linked within 3 s; giving up.")
    screen = pyte.Screen(120, 60)
    pyte.Stream(screen).feed(done.stdout.replace("\n", "\r\n"))
    assert drawn_qr(screen) == FIRST
