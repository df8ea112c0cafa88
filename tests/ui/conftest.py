"""Real browser tests: Playwright driving Debian's chromium against real UI, bridge, bot and
simulator processes on loopback. Screenshots of each state go to artifacts/ui/."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.harness import SimThread, bot_on, simulator
from tests.integration.test_bridge import TOKEN, running_bridge
from tests.procs import ServiceProcess, free_port, wait_until
from waqr.ui.launch import streamlit_command

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
# The flags the machine needs for a quiet, offline headless chromium.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def serving(
    command: list[str],
    log_path: Path,
    health_url: str,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[None]:
    """A server process, until ``health_url`` answers; stopped (killed if need be) after."""
    log = log_path.open("ab")
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_until(lambda: httpx.get(health_url, timeout=2).is_success, 60)
        yield
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def running_ui(
    workdir: Path,
    api_url: str,
    token: str,
    *,
    env: dict[str, str] | None = None,
    secrets_file: Path | None = None,
    port: int | None = None,
) -> Iterator[str]:
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    with serving(
        streamlit_command("127.0.0.1", port, secrets_file=secrets_file),
        workdir / f"ui-{port}.log",
        url + "/_stcore/health",
        env={
            "WA_QR_API_URL": api_url,
            "WA_QR_BRIDGE_TOKEN": token,
            "PATH": "/usr/bin:/bin",
            **(env or {}),
        },
        cwd=workdir,  # no stray .streamlit/secrets.toml from the checkout
    ):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: scripts/test installs it (apt-get chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 900, "height": 1300})
    opened = context.new_page()
    yield opened
    context.close()


@dataclass
class Backend:
    sim: SimThread
    bot: ServiceProcess
    api: ServiceProcess


@dataclass
class Stack(Backend):
    ui_url: str


@contextlib.contextmanager
def running_backend(workdir: Path, sim_state: Path, *, refs: int) -> Iterator[Backend]:
    """Simulator, bot and bridge; ``refs`` QR codes per batch (two: rotations every 20 s)."""
    with simulator(sim_state) as sim:
        sim.faults(refs=refs)
        bot = bot_on(sim, workdir / "bot").start()
        try:
            with running_bridge(workdir / "api", bot.url) as api:
                yield Backend(sim, bot, api)
        finally:
            bot.stop()


@contextlib.contextmanager
def running_stack(workdir: Path, sim_state: Path, *, refs: int) -> Iterator[Stack]:
    with (
        running_backend(workdir, sim_state, refs=refs) as backend,
        running_ui(workdir / "ui", backend.api.url, TOKEN) as ui_url,
    ):
        yield Stack(backend.sim, backend.bot, backend.api, ui_url)


@pytest.fixture
def stack(tmp_path: Path, sim_state: Path) -> Iterator[Stack]:
    with running_stack(tmp_path, sim_state, refs=2) as running:
        yield running


@pytest.fixture(scope="session")
def sim_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim-state")


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def bridge_requests(api: ServiceProcess) -> float:
    """Every HTTP request the bridge has answered (its own /metrics excluded)."""
    text = api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("http_requests_total{")
    )
