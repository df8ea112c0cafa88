"""Start the Streamlit server on the UI script (``waqr ui``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from waqr import lifeline

APP = Path(__file__).with_name("app.py")


def streamlit_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


def run_ui(host: str, port: int, env: dict[str, str]) -> int:
    """Streamlit in a child that dies with this process; SIGTERM and Ctrl-C stop it."""
    process = subprocess.Popen(
        lifeline.command(os.getpid(), streamlit_command(host, port)), env={**os.environ, **env}
    )
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)
        process.terminate()
        killer = threading.Timer(10, process.kill)  # Streamlit gets 10 s to stop
        killer.daemon = True
        killer.start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = process.wait()
    if stopping:
        return 130 if stopping[0] == signal.SIGINT else 0
    return code
