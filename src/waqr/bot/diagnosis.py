"""The doctor beside the session: when the engine fails to connect, say which layer failed.

One task per session reads the session's state events. A reason that says the engine could
not connect (``connection_failure``, ``connect_timeout``) starts one doctor run, bounded so
the verdict (layer, cause, detail, fixes) lands in ``lastDisconnectReason.diagnosis`` within
10 s of the failure. Runs one at a time; a failure while one runs is covered by its verdict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Final

from waqr.bot.session import Session
from waqr.doctor import ProbeTarget, diagnose
from waqr.logs import log_event
from waqr.settings import Settings

log = logging.getLogger("waqr.bot.diagnosis")

DIAGNOSED: Final = frozenset({"connection_failure", "connect_timeout"})
STEP_BOUND: Final = 2.0  # each network step
NOISE_BOUND: Final = 4.0  # waiting for ServerHello
BUDGET: Final = 9.0  # the whole run: the verdict is there within 10 s


class DiagnosisWatch:
    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        base = ProbeTarget.from_settings(settings)
        self.target = dataclasses.replace(
            base,
            step_timeout=min(base.step_timeout, STEP_BOUND),
            noise_timeout=min(base.noise_timeout, NOISE_BOUND),
        )

    async def run(self) -> None:
        diagnosed: object = None  # the reason last diagnosed (a new failure is a new object)
        async for event in self.session.subscribe():
            reason = self.session.reason
            if event["type"] != "state" or reason is None or reason is diagnosed:
                continue
            if reason.code not in DIAGNOSED or reason.diagnosis is not None:
                continue
            diagnosed = reason
            verdict = await self.verdict()
            if verdict is not None:
                self.session.attach_diagnosis(reason.code, verdict)

    async def verdict(self) -> dict[str, Any] | None:
        """The first failing layer, or a healthy note; None when the run overran its budget."""
        try:
            async with asyncio.timeout(BUDGET):
                report = await diagnose(
                    self.settings, target=self.target, bot_status=self.session.status()
                )
        except TimeoutError:
            log_event(log, "diagnosis overran its budget", session=self.session.name)
            return None
        failed = report.verdict
        if failed is None:
            return {
                "healthy": True,
                "detail": "every layer up to the Noise hello answered; the failure was the "
                "engine's own or passing",
            }
        body = failed.as_json()
        log_event(
            log,
            "diagnosis",
            session=self.session.name,
            layer=failed.layer.value,
            cause=failed.cause,
        )
        return {
            "healthy": False,
            "layer": body["layer"],
            "cause": body["cause"],
            "detail": body["detail"],
            "fixes": body["fixes"],
        }
