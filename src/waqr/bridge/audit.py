"""The audit trail: every state-changing call through the bridge (reconnect, relink, logout,
pair-code, send_message) is logged once on ``waqr.audit`` with who asked (which credential, by
position, never its value), from where, and how it ended."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import HTTPException, Request

from waqr import errors
from waqr.logs import log_event

log = logging.getLogger("waqr.audit")

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (errors.BotUnreachable, 503),
    (errors.BotTimeout, 504),
)


def _status_of(exc: Exception) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, errors.BotRejected):
        return exc.status_code
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


@asynccontextmanager
async def audited(request: Request, action: str, *, success: int = 200) -> AsyncIterator[None]:
    status = success
    try:
        yield
    except Exception as exc:
        status = _status_of(exc)
        raise
    finally:
        log_event(
            log,
            "admin action",
            action=action,
            caller=getattr(request.state, "caller", "unknown"),
            client=request.client.host if request.client else "unknown",
            outcome=status,
        )
