"""``waqr doctor``: run the probe from this host and print one line per layer (or JSON).

Exit status: 0 every layer healthy, 1 a layer failed (the verdict names it), 2 the doctor could
not run at all. A malformed setting is the configuration layer failing, not a crash.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Final, TextIO

import httpx

from waqr.doctor.probe import diagnose
from waqr.doctor.verdict import Layer, LayerFailed, Outcome, Report, Step
from waqr.errors import ConfigError
from waqr.settings import Settings, load_settings

EXIT_HEALTHY: Final = 0
EXIT_LAYER_FAILED: Final = 1
EXIT_COULD_NOT_RUN: Final = 2
BOT_STATUS_TIMEOUT: Final = 3.0
MARKS: Final = {Outcome.OK: "ok  ", Outcome.FAILED: "FAIL", Outcome.SKIPPED: "--  "}


def run_doctor(*, as_json: bool, out: TextIO = sys.stdout) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        report = Report(target="(not probed)", via=None)
        report.steps.append(
            Step(
                Layer.CONFIG,
                Outcome.FAILED,
                str(exc),
                cause="invalid_configuration",
                fixes=("fix the variable named above (see README, Configuration)",),
            )
        )
        _print(report, as_json=as_json, out=out)
        return EXIT_LAYER_FAILED
    try:
        report = asyncio.run(diagnose(settings, bot_status=bot_status(settings)))
    except (OSError, ValueError, LayerFailed) as exc:
        sys.stderr.write(f"waqr doctor: could not run: {exc}\n")
        return EXIT_COULD_NOT_RUN
    _print(report, as_json=as_json, out=out)
    return EXIT_HEALTHY if report.healthy else EXIT_LAYER_FAILED


def bot_status(settings: Settings) -> dict[str, Any] | None:
    """The local bot's /status, for the account layer; None when no bot answers."""
    headers = {"Authorization": f"Bearer {settings.bot_token}"} if settings.bot_token else {}
    try:
        reply = httpx.get(settings.bot_url + "/status", headers=headers, timeout=BOT_STATUS_TIMEOUT)
    except httpx.HTTPError:
        return None
    if reply.status_code != 200:
        return None
    body: dict[str, Any] = reply.json()
    return body


def render(report: Report) -> str:
    """The human form: one line per layer with its time, then the verdict and its fixes."""
    via = f" via {report.via}" if report.via else ""
    lines = [f"waqr doctor: {report.target}{via}"]
    for step in report.steps:
        timing = f"{step.elapsed_ms:7.0f} ms" if step.outcome is not Outcome.SKIPPED else " " * 10
        lines.append(f"  {MARKS[step.outcome]} {step.layer.value:<9} {timing}  {step.detail}")
    verdict = report.verdict
    if verdict is None:
        lines.append("healthy: every layer answered as WhatsApp should")
    else:
        lines.append(f"verdict: {verdict.layer.value} failed ({verdict.cause})")
        lines.extend(f"  fix: {fix}" for fix in verdict.fixes)
    return "\n".join(lines)


def _print(report: Report, *, as_json: bool, out: TextIO) -> None:
    text = json.dumps(report.as_json(), indent=2) if as_json else render(report)
    out.write(text + "\n")
