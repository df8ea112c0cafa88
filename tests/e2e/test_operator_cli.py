"""`waqr link` and `waqr status` in a real pseudo-terminal, against the running stack (bot and
bridge processes, the real engine, the simulator): the QR a person sees on the terminal is
read back off the screen and scanned by the simulated phone."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import SimThread, bot_on, link, wait_status
from tests.integration.test_bridge import BEARER, TOKEN, running_bridge
from tests.procs import ServiceProcess
from tests.terminal import Terminal, drawn_qr, qr_lines, run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PAIR_CODE = re.compile(r"^\s*([A-Z0-9]{4}-?[A-Z0-9]{4})\s*$", re.MULTILINE)
COUNTDOWN = re.compile(r"expires in (\d+) s")


@dataclass
class Stack:
    sim: SimThread
    bot: ServiceProcess
    api: ServiceProcess
    workdir: Path

    @property
    def env(self) -> dict[str, str]:
        return {"WA_QR_API_URL": self.api.url, "WA_QR_BRIDGE_TOKEN": TOKEN}

    def terminal(self, *args: str) -> Terminal:
        return Terminal(list(args), self.env, self.workdir)

    def run(self, *args: str) -> tuple[int, str]:
        return run(list(args), self.env, self.workdir, raw="--json" in args)

    def bridge_qr(self) -> Any:
        return self.api.get("/admin/wa/qr", headers=BEARER).json()["qr"]


@pytest.fixture
def stack(sim: SimThread, tmp_path: Path) -> Iterator[Stack]:
    bot = bot_on(sim, tmp_path / "bot").start()
    try:
        with running_bridge(tmp_path / "api", bot.url) as api:
            yield Stack(sim, bot, api, tmp_path)
    finally:
        bot.stop()


def test_link_draws_the_live_qr_follows_a_rotation_and_exits_0_once_scanned(
    stack: Stack,
) -> None:
    stack.sim.faults(refs=2)  # after the first, codes live 20 s
    terminal = stack.terminal("link")
    try:
        # What is drawn is the code the bridge serves at that moment.
        first = terminal.wait_for(
            lambda t: (q := drawn_qr(t.screen)) == stack.bridge_qr() and q, 60
        )
        seconds = int(terminal.wait_for(lambda t: COUNTDOWN.search(t.text), 10).group(1))
        assert 0 < seconds <= 60
        # The next code replaces it on the screen without anyone asking.
        second = terminal.wait_for(
            lambda t: (q := drawn_qr(t.screen)) and q != first and q == stack.bridge_qr() and q,
            90,
        )
        stack.sim.scan(second)
        assert terminal.exit_code(60) == 0
        assert "Linked: WhatsApp is connected as +" in terminal.text
        assert qr_lines(terminal.screen) == []  # the spent QR is wiped at the end
        assert TOKEN.encode() not in terminal.raw
    finally:
        terminal.close()
    assert stack.bot.status()["status"] == "connected"


def test_link_with_a_phone_number_shows_a_code_the_phone_accepts(stack: Stack) -> None:
    wait_status(stack.bot, "qr_ready", 60)
    terminal = stack.terminal("link", "--phone", "+1 555 000 1111")
    try:
        shown = terminal.wait_for(lambda t: PAIR_CODE.search(t.text), 120)
        assert "WhatsApp -> Linked devices -> Link with phone number" in terminal.text
        assert qr_lines(terminal.screen) == []  # a code, not a QR
        stack.sim.enter_code(shown.group(1))
        assert terminal.exit_code(60) == 0
        assert "Linked: WhatsApp is connected as +" in terminal.text
    finally:
        terminal.close()


def test_status_in_words_and_json_while_linking_and_once_connected(stack: Stack) -> None:
    wait_status(stack.bot, "qr_ready", 60)
    code, text = stack.run("status")
    assert code == 1, text
    assert "WhatsApp:  Scan the QR code [qr_ready]" in text
    assert "Since:     20" in text and " UTC (" in text
    assert re.search(r"QR code:   on offer, \d+ s left", text)
    code, text = stack.run("status", "--json")
    assert code == 1, text
    body = json.loads(text)
    assert body["status"] == "qr_ready" and body["connected"] is False
    assert body["bridge"]["pushConnected"] is True

    # Ctrl-C while the QR is up: exit 130, the QR wiped from the screen.
    terminal = stack.terminal("link")
    try:
        terminal.wait_for(lambda t: drawn_qr(t.screen), 60)
        terminal.interrupt()
        assert terminal.exit_code(30) == 130
        assert qr_lines(terminal.screen) == []
        assert "interrupted" in terminal.text
    finally:
        terminal.close()

    link(stack.sim, stack.bot)
    code, text = stack.run("status")
    assert code == 0, text
    assert "WhatsApp:  Connected [connected]" in text
    assert re.search(r"Account:   \+1\d?\*+\d\d", text)  # masked: never the full number
    code, text = stack.run("status", "--json")
    assert code == 0
    assert json.loads(text)["connected"] is True
    # Already linked: `waqr link` says so and succeeds at once.
    code, text = stack.run("link")
    assert code == 0, text
    assert "Linked: WhatsApp is connected as +" in text
