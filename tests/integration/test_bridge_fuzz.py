"""Schemathesis over the bridge's own OpenAPI document, against real bridge and bot
processes: whatever it generates, no answer is a 5xx."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_bridge import API_KEY, REFUSED, TOKEN, running_bridge
from tests.procs import MisbehavingProxy, running_bot

pytestmark = pytest.mark.timeout(600)


def test_generated_requests_never_get_a_server_error(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a dev dependency"
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(tmp_path / "bot", WA_PROXY=proxy.url) as bot,
        running_bridge(
            tmp_path / "api", bot.url, WA_QR_API_KEY=API_KEY, WAQR_BOT_TIMEOUT="8"
        ) as api,
    ):
        result = subprocess.run(
            [
                st,
                "run",
                f"{api.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--header",
                f"X-API-Key: {API_KEY}",
                # An event stream never ends; it has its own test.
                "--exclude-path",
                "/admin/wa/events",
                "--max-examples",
                "25",
                "--request-timeout",
                "20",
                "--generation-deterministic",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=500,
        )
        report = result.stdout + result.stderr
        assert result.returncode == 0, report[-4000:]
        tested = re.search(r"Tested: (\d+)", report)
        assert tested is not None and int(tested.group(1)) >= 12, report[-2000:]
        assert re.search(r"(\d+) generated, \1 passed", report), report[-2000:]
