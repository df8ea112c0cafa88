"""The real bot, its real engine and the simulator: what a contact writes while the bot is
down is not lost. WhatsApp (here the simulator) keeps it in the linked device's offline queue
and hands it over at the next login; the bot stores each message once and tells the webhook
once, in order."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import SimThread, bot_on, link
from tests.e2e.test_messaging import CONTACT_DIGITS, HookReceiver
from tests.e2e.test_messaging_devices import keys_uploaded
from tests.procs import ServiceProcess, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _device(sim: SimThread, jid: str) -> dict[str, object]:
    (device,) = [d for d in sim.devices() if d["jid"] == jid]
    return device


def test_texts_sent_while_the_bot_is_killed_reach_the_webhook_once_in_order_after_restart(
    sim: SimThread, tmp_path: Path
) -> None:
    receiver = HookReceiver()
    receiver.start()
    env = receiver.bot_env()
    bot = bot_on(sim, tmp_path / "bot", **env).start()
    restarted: ServiceProcess | None = None
    try:
        jid = link(sim, bot)["jid"]
        wait_until(lambda: keys_uploaded(sim), 30)  # a contact can write to it from now on
        assert bot.proc is not None
        os.killpg(bot.proc.pid, signal.SIGKILL)  # bot and engine: the socket just ends
        bot.proc.wait(10)
        wait_until(lambda: _device(sim, jid)["connected"] is False, 30)

        texts = ["first while away", "second while away", "third while away"]
        ids = []
        with httpx.Client(base_url=sim.control, timeout=30) as control:
            for text in texts:
                sent = control.post(f"/contacts/{CONTACT_DIGITS}/send", json={"text": text})
                assert sent.status_code == 200, sent.text  # accepted, as WhatsApp does
                assert (sent.json()["delivered_to"], sent.json()["queued_for"]) == ([], [jid])
                ids.append(sent.json()["id"])
        assert _device(sim, jid)["queued"] == 3

        restarted = bot_on(sim, tmp_path / "bot", **env).start()  # same data dir
        # Handed over at login and acknowledged by the engine: nothing left to deliver again.
        wait_until(lambda: _device(sim, jid)["queued"] == 0, 90)
        inbox = wait_until(
            lambda: (
                len(m := restarted.get("/messages", params={"direction": "in"}).json()["messages"])
                >= 3
                and m
            ),
            60,
        )
        assert [(m["id"], m["text"]) for m in inbox] == list(zip(ids, texts, strict=True))
        wait_until(lambda: len(receiver.events) >= 3, 60)
        assert [e["type"] for e in receiver.events] == ["message"] * 3
        assert [(e["data"]["id"], e["data"]["text"]) for e in receiver.events] == list(
            zip(ids, texts, strict=True)
        )
        assert len({e["id"] for e in receiver.events}) == 3
        assert receiver.valid == [True, True, True]
    finally:
        if restarted is not None:
            restarted.stop()
        bot.stop()
        receiver.stop()
