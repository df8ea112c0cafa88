"""The audit trail: every state-changing call through the bridge (reconnect, relink, logout,
pair-code, send_message) is logged once on ``waqr.audit`` with who asked (which credential, by
position, never its value), from where, and how it ended. A client acting for a person (the
UI) names them in ``X-Waqr-User``; the log records it as ``user``, next to the credential that
vouches for it (the name is the caller's claim, trusted as far as its token is)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import HTTPException, Request

from waqr import errors
from waqr.logs import log_event

log = logging.getLogger("waqr.audit")

USER_HEADER = "X-Waqr-User"
MAX_USER_LENGTH = 200


def claimed_user(request: Request) -> str | None:
    """The person the caller acts for, printable and bounded, or None."""
    name = request.headers.get(USER_HEADER, "").strip()
    if not name:
        return None
    return "".join(c if c.isprintable() else "?" for c in name[:MAX_USER_LENGTH])


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
            user=claimed_user(request),
            client=request.client.host if request.client else "unknown",
            outcome=status,
        )
