"""End to end: the real neonize 0.5.2 client (in a child process) links through the simulator.

QR -> phone scan -> PairStatus -> Connected; a restart logs in without a QR; a remote logout
reaches the client as LoggedOut. The client runs with only its Noise root key patched.

The driver is the bare client, with none of the bot's recovery: where WhatsApp drops the socket
right after the 515 (``after_pair="close"``, the default) the bare client sometimes handles the
close first and never redials (whatsmeow pair.go calls expectDisconnect() before replying). So
these tests let the client close first (``linger``, set by the ``simulator`` fixture in
conftest.py), except the one about that very race.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from waqr.sim.app import Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DRIVER = Path(__file__).with_name("neonize_driver.py")
STEP_TIMEOUT = 60.0  # one protocol step; the client's own timeouts are 20 s (handshake) and 75 s
QUIET_WAIT = 5.0  # how long a client that would redial at once is given to do it


class Bot:
    """One run of the neonize driver, with its event lines."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.events: list[dict[str, Any]] = []  # everything the driver reported
        self.backlog: list[dict[str, Any]] = []  # read but not yet taken by next_event

    async def next_event(self, *names: str) -> dict[str, Any]:
        """The earliest not yet taken event with one of these names.

        The Go side dispatches events from several goroutines, so their order is not
        guaranteed (e.g. Disconnected vs TemporaryBan); events read past are kept for later.
        """
        for event in self.backlog:
            if event["event"] in names:
                self.backlog.remove(event)
                return event
        assert self.process.stdout is not None
        async with asyncio.timeout(STEP_TIMEOUT):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    log = self.log_path.read_text()[-3000:]
                    raise AssertionError(f"driver exited; log:\n{log}")
                event = json.loads(line)
                self.events.append(event)
                if event["event"] in names:
                    return event
                self.backlog.append(event)

    async def command(self, **fields: Any) -> None:
        """Send the driver a command (neonize_driver.follow_commands)."""
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(fields) + "\n").encode())
        await self.process.stdin.drain()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def log_lines(self, level: str) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines() if level in line]


async def start_bot(
    simulator: Simulator, neonize_path: Path, store: Path, log_name: str, *extra: str
) -> Bot:
    env = dict(os.environ)
    env["SSL_CERT_FILE"] = str(simulator.ca_cert_path)
    env["PYTHONPATH"] = os.pathsep.join([str(neonize_path), env.get("PYTHONPATH", "")])
    log_path = store.parent / log_name
    with log_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(DRIVER),
            str(store),
            simulator.proxy_url,
            *extra,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
    return Bot(process, log_path)


async def pair_by_qr(simulator: Simulator, bot: Bot) -> str:
    """Scan the bot's first QR with the simulated phone; the linked JID once it is Connected."""
    qr = await bot.next_event("qr")
    async with httpx.AsyncClient(base_url=simulator.control_url) as api:
        scan = await api.post("/phone/scan", json={"qr": qr["code"]}, timeout=STEP_TIMEOUT)
    assert scan.status_code == 200, scan.text
    await bot.next_event("connected")
    return str(scan.json()["jid"])


async def test_real_client_pairs_connects_restarts_and_is_logged_out(
    simulator: Simulator, neonize_path: Path, tmp_path: Path
) -> None:
    store = tmp_path / "bot" / "session.db"
    store.parent.mkdir()
    bot = await start_bot(simulator, neonize_path, store, "run1.log")
    try:
        qr = await bot.next_event("qr")
        assert qr["code"].startswith("https://wa.me/settings/linked_devices#2@")
        async with httpx.AsyncClient(base_url=simulator.control_url) as api:
            scan = await api.post("/phone/scan", json={"qr": qr["code"]}, timeout=STEP_TIMEOUT)
            assert scan.status_code == 200, scan.text
            jid = scan.json()["jid"]
            paired = await bot.next_event("pair_status")
            assert paired["error"] == "" and paired["jid"] == jid
            await bot.next_event("connected")
        assert bot.log_lines("ERROR") == []
    finally:
        await bot.stop()

    bot = await start_bot(simulator, neonize_path, store, "run2.log")
    try:
        first = await bot.next_event("connected", "qr")
        assert first["event"] == "connected"
        async with httpx.AsyncClient(base_url=simulator.control_url) as api:
            logout = await api.post("/phone/logout", json={"jid": jid}, timeout=STEP_TIMEOUT)
            assert logout.status_code == 200, logout.text
        logged_out = await bot.next_event("logged_out")
        assert logged_out["on_connect"] is False
    finally:
        await bot.stop()


async def test_real_client_links_with_a_pairing_code(
    simulator: Simulator, neonize_path: Path, tmp_path: Path
) -> None:
    store = tmp_path / "bot" / "session.db"
    store.parent.mkdir()
    bot = await start_bot(simulator, neonize_path, store, "code.log", "pair-code", "+15550002222")
    try:
        code = (await bot.next_event("pair_code", "pair_code_error"))["code"]
        assert len(code) == 9 and code[4] == "-"
        async with httpx.AsyncClient(base_url=simulator.control_url) as api:
            body = {"code": code, "phone": "+1 555 000 2222"}
            linked = await api.post("/phone/pair-code", json=body, timeout=STEP_TIMEOUT)
        assert linked.status_code == 200, linked.text
        assert linked.json()["jid"] == "15550002222:1@s.whatsapp.net"
        paired = await bot.next_event("pair_status")
        assert paired["error"] == "" and paired["jid"] == linked.json()["jid"]
        await bot.next_event("connected")
    finally:
        await bot.stop()


async def test_protocol_faults_reach_the_real_client_as_events(
    simulator: Simulator, neonize_path: Path, tmp_path: Path
) -> None:
    store = tmp_path / "bot" / "session.db"
    store.parent.mkdir()
    bot = await start_bot(simulator, neonize_path, store, "faults1.log")
    try:
        await pair_by_qr(simulator, bot)
        async with httpx.AsyncClient(base_url=simulator.control_url) as api:
            ban = {"failure": {"reason": 402, "code": 101, "expire": 3600}}
            await api.post("/faults", json=ban)
            dropped = await api.post("/faults", json={"drop_linked_sessions": True})
            assert dropped.json()["affected_sessions"] == 1
        await bot.next_event("disconnected")
        banned = await bot.next_event("temporary_ban")
        assert banned["expire"] == 3600
    finally:
        await bot.stop()
    bot = await start_bot(simulator, neonize_path, store, "faults2.log")
    try:
        async with httpx.AsyncClient(base_url=simulator.control_url) as api:
            await api.post("/faults", json={"stream_error": {"conflict": "replaced"}})
        await bot.next_event("connected")
        await bot.next_event("stream_replaced")
    finally:
        await bot.stop()


async def test_real_client_that_never_sees_the_515_never_redials(
    simulator: Simulator, neonize_path: Path, tmp_path: Path
) -> None:
    """The race the bot must survive, made certain: the client is paired, the socket drops,
    and neither an event nor a new connection follows."""
    store = tmp_path / "bot" / "session.db"
    store.parent.mkdir()
    bot = await start_bot(simulator, neonize_path, store, "lost515.log")
    try:
        async with httpx.AsyncClient(base_url=simulator.control_url) as api:
            view = await api.post("/faults", json={"after_pair": "close_without_515"})
            assert view.json()["after_pair"] == "close_without_515"
            qr = await bot.next_event("qr")
            scan = await api.post("/phone/scan", json={"qr": qr["code"]}, timeout=STEP_TIMEOUT)
        assert scan.status_code == 200, scan.text
        paired = await bot.next_event("pair_status")
        assert paired["error"] == ""
        with pytest.raises(TimeoutError):  # a redial would come at once (connectionevents.go)
            async with asyncio.timeout(QUIET_WAIT):
                while not simulator.world.sessions:
                    await asyncio.sleep(0.1)
        assert simulator.world.devices and not simulator.world.logged_in()
        assert "connected" not in [event["event"] for event in bot.events]
    finally:
        await bot.stop()
