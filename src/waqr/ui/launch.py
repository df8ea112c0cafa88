"""Start the Streamlit server on the UI script (``waqr ui``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def spawn_ui(host: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(streamlit_command(host, port), env={**os.environ, **env})


def run_ui(host: str, port: int, env: dict[str, str]) -> int:
    process = spawn_ui(host, port, env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait(10)
