"""Schemathesis over the bridge's and the bot's own OpenAPI documents, against real processes
with valid credentials: whatever it generates, no answer is a 5xx, and every answer (status,
content type, headers, body) is one the document describes.

Bounded for a CI machine with 2 cores: a fixed seed (the same cases every run), a cap on
examples per operation, and no stateful phase (the routes hold no
resources that link to each other). 502/503/504 are documented answers (the bot's WhatsApp
route is a proxy that refuses everything, so the engine never links); what must never appear
is an undocumented status, a body that is not the documented ErrorBody, or a 500.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_bot_auth import BOT_TOKEN
from tests.integration.test_bridge import API_KEY, REFUSED, TOKEN, running_bridge
from tests.procs import MisbehavingProxy, running_bot

pytestmark = pytest.mark.timeout(600)

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
)
SEED = "20261126"


def schemathesis(url: str, *headers: str, max_examples: int, exclude: tuple[str, ...]) -> str:
    """Run ``st`` against the document at ``url``; fail the test with its report when it
    finds anything. Returns the report."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a dev dependency"
    command = [st, "run", url, "--checks", CHECKS, "--seed", SEED]
    for header in headers:
        command += ["--header", header]
    for path in exclude:
        command += ["--exclude-path", path]
    command += [
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(max_examples),
        "--request-timeout",
        "30",
        "--workers",
        "1",
        "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=540)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    return report


def cases_run(report: str) -> int:
    found = re.search(r"(\d+) generated", report)
    assert found is not None, report[-2000:]
    return int(found.group(1))


def test_the_bridge_holds_its_contract_under_generated_requests(tmp_path: Path) -> None:
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(tmp_path / "bot", WA_PROXY=proxy.url, WAQR_BOT_TOKEN=BOT_TOKEN) as bot,
        running_bridge(
            tmp_path / "api",
            bot.url,
            WA_QR_API_KEY=API_KEY,
            WAQR_BOT_TOKEN=BOT_TOKEN,
            WAQR_BOT_TIMEOUT="8",
            WAQR_BOT_PAIR_TIMEOUT="25",
        ) as api,
    ):
        report = schemathesis(
            f"{api.url}/openapi.json",
            f"Authorization: Bearer {TOKEN}",
            f"X-API-Key: {API_KEY}",
            max_examples=50,
            # An event stream never ends; it has its own test.
            exclude=("/admin/wa/events",),
        )
    assert cases_run(report) >= 200, report[-2000:]


def test_the_bot_holds_its_contract_under_generated_requests(tmp_path: Path) -> None:
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(tmp_path / "bot", WA_PROXY=proxy.url, WAQR_BOT_TOKEN=BOT_TOKEN) as bot,
    ):
        report = schemathesis(
            f"{bot.url}/openapi.json",
            f"Authorization: Bearer {BOT_TOKEN}",
            max_examples=50,
            exclude=("/events",),
        )
    assert cases_run(report) >= 150, report[-2000:]
