"""`waqr up` owns its children: it starts whole or not at all, and however it is stopped
(SIGTERM, Ctrl-C, SIGKILL) nothing it started lives on: not the bot holding the data dir,
not the engine holding the credentials, not Streamlit holding the token."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import SimThread
from tests.procs import ServiceProcess, descendants, free_port, process_alive, wait_until


def marked(mark: str) -> set[int]:
    """Every live process whose environment carries ``mark``: everything a run started,
    wherever it was reparented to."""
    needle = f"WAQR_TEST_RUN={mark}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.add(int(entry.name))
        except OSError:
            continue
    return {pid for pid in found if process_alive(pid)}


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Up:
    """A `waqr up` process on free ports, its output collected."""

    env: dict[str, str]
    api_port: int = field(default_factory=free_port)
    bot_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    mark: str = field(default_factory=lambda: secrets.token_hex(8))
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Up:
        env = {
            **os.environ,
            **self.env,
            "WAQR_API_HOST": "127.0.0.1",
            "WA_QR_BRIDGE_TOKEN": self.token,
            "WAQR_LOG_FORMAT": "json",
            "WAQR_TEST_RUN": self.mark,
        }
        argv = [sys.executable, "-m", "waqr.cli", "up", "--port", str(self.api_port)]
        argv += ["--bot-port", str(self.bot_port), "--ui-port", str(self.ui_port)]
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=_collect, args=(stream, sink), daemon=True).start()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def is_up(self) -> bool:
        return any("waqr is up" in line for line in self.out)

    def wait(self, timeout: float = 90) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def finish(self) -> None:
        """Kill it if it still runs, and release its pipes."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def stderr(self) -> str:
        return "\n".join(self.err)

    def qr(self) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.api_port}/admin/wa/qr",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )


def _collect(stream: object, sink: list[str]) -> None:
    for raw in stream:  # type: ignore[attr-defined]
        sink.append(raw.decode("utf-8", "replace").rstrip())


@pytest.fixture
def up_env(sim: SimThread, tmp_path: Path) -> dict[str, str]:
    return {**sim.bot_env(), "WAQR_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def up(up_env: dict[str, str]) -> Iterator[Up]:
    running = Up(up_env).start()
    yield running
    running.finish()
    for pid in marked(running.mark):
        os.kill(pid, signal.SIGKILL)


def started_whole(up: Up) -> set[int]:
    """Wait for the banner and a QR (so the engine child runs); return the process tree."""
    wait_until(lambda: up.is_up() or up.proc.poll() is not None, 120)  # type: ignore[union-attr]
    assert up.is_up(), up.stderr()
    wait_until(lambda: up.qr().status_code == 200, 60)
    tree = descendants(up.pid)
    lines = [command_line(pid) for pid in tree]
    assert any("waqr.cli bot" in line for line in lines), lines
    assert any("streamlit" in line for line in lines), lines
    assert any("waqr.engine.child" in line for line in lines), lines
    return tree


@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130), (signal.SIGKILL, -9)]
)
def test_no_part_outlives_waqr_up(up: Up, sig: signal.Signals, status: int) -> None:
    tree = started_whole(up)
    # Every process of the run carries the marker, however it is reparented; none is a zombie.
    assert tree <= marked(up.mark), [command_line(pid) for pid in tree - marked(up.mark)]

    os.kill(up.pid, sig)

    assert up.wait() == status
    try:
        wait_until(lambda: not marked(up.mark), 60)
    except AssertionError:
        raise AssertionError([command_line(pid) for pid in marked(up.mark)]) from None


def test_the_banner_waits_for_every_part_and_names_the_addresses(up: Up) -> None:
    started_whole(up)
    banner = "\n".join(up.out)
    assert f"http://127.0.0.1:{up.ui_port}" in banner
    assert f"http://127.0.0.1:{up.api_port}" in banner
    assert f"http://127.0.0.1:{up.bot_port}" in banner
    # By the time the banner is out, each part answers.
    assert httpx.get(f"http://127.0.0.1:{up.ui_port}/_stcore/health", timeout=10).text == "ok"
    assert httpx.get(f"http://127.0.0.1:{up.bot_port}/health", timeout=10).status_code == 200
    # One log format for the whole stack: Streamlit's own lines come wrapped as JSON too.
    records = [json.loads(line) for line in up.err if line.strip()]
    assert any(r["logger"] == "waqr.ui.streamlit" for r in records)


def test_a_busy_port_stops_the_start_with_one_line(up_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        up = Up(up_env, ui_port=squatter.getsockname()[1]).start()
        try:
            assert up.wait() == 1
        finally:
            up.finish()
    assert not up.is_up()
    last = up.err[-1]
    assert last.startswith("waqr: the ui cannot listen on 127.0.0.1:"), up.err
    assert "--ui-port" in last
    assert not marked(up.mark)


def test_a_bot_that_cannot_start_stops_the_rest(up_env: dict[str, str], tmp_path: Path) -> None:
    # Another bot already holds the data directory: ours exits at once with its reason.
    holder = ServiceProcess(Path(up_env["WAQR_DATA_DIR"]), env=up_env).start()
    try:
        up = Up(up_env).start()
        try:
            assert up.wait() == 1
        finally:
            up.finish()
        left = marked(up.mark)
    finally:
        holder.stop()
    assert not up.is_up()
    assert up.err[-1].startswith("waqr: the bot exited with status 2"), up.err[-3:]
    assert "in use" in up.err[-1]
    assert not left


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_waqr_ui_takes_streamlit_with_it(sig: signal.Signals) -> None:
    port, mark = free_port(), secrets.token_hex(8)
    env = {**os.environ, "WAQR_UI_PORT": str(port), "WAQR_TEST_RUN": mark}
    ui = subprocess.Popen(
        [sys.executable, "-m", "waqr.cli", "ui"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        health = f"http://127.0.0.1:{port}/_stcore/health"
        wait_until(lambda: httpx.get(health, timeout=2).status_code == 200, 90)
        assert len(marked(mark)) >= 2  # `waqr ui` and Streamlit under its lifeline

        ui.send_signal(sig)

        assert ui.wait(60) == (0 if sig == signal.SIGTERM else -9)
        wait_until(lambda: not marked(mark), 60)
    finally:
        if ui.poll() is None:
            ui.kill()
        for pid in marked(mark):
            os.kill(pid, signal.SIGKILL)
