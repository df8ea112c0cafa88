"""One shape for every error waqr's HTTP services return: ``{"error": code, "detail": text}``.

FastAPI's own 422 body (a list of pydantic error dicts under ``detail``) is flattened into one
sentence that names the field and the problem; WaqrError subclasses map to their status
codes here, once, for the bot and the bridge alike.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from waqr import errors

log = logging.getLogger("waqr.http")

_STATUS: tuple[tuple[type[errors.WaqrError], int, str], ...] = (
    (errors.InvalidPhoneNumber, 422, "invalid_phone"),
    (errors.NoQrAvailable, 404, "no_qr"),
    (errors.SessionBusy, 409, "conflict"),
    (errors.SessionUnavailable, 503, "session_unavailable"),
    (errors.EngineCommandFailed, 503, "engine_error"),
    (errors.EngineError, 503, "engine_error"),
    (errors.BotUnreachable, 503, "bot_unreachable"),
    # 502: the bot is there but the bridge cannot trust it; an operator's fix, not a wait.
    (errors.BotTlsFailed, 502, "bot_tls_failed"),
    (errors.BotTimeout, 504, "bot_timeout"),
)


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def _slug(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = [str(x) for x in error.get("loc", ()) if x not in ("body", "query", "path")]
        where = ".".join(location) or "body"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        body = error_body("invalid_request", describe_validation(exc))
        return JSONResponse(body, status_code=422)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.detail, dict) and "error" in exc.detail:
            body = exc.detail
        else:
            body = error_body(_slug(exc.status_code), str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_waqr(_request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, errors.BotRejected):
            body = exc.body if "error" in exc.body else error_body("bot_error", str(exc))
            wait = body.get("retryAfter")
            # The bot's rate limit, passed on with its Retry-After.
            headers = {"Retry-After": str(wait)} if isinstance(wait, int) else None
            return JSONResponse(body, status_code=exc.status_code, headers=headers)
        for cls, status, code in _STATUS:
            if isinstance(exc, cls):
                return JSONResponse(error_body(code, str(exc)), status_code=status)
        return JSONResponse(error_body("error", str(exc)), status_code=400)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
        return JSONResponse(error_body("internal_error", "unexpected error; see logs"), 500)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(errors.WaqrError, on_waqr)
    app.add_exception_handler(Exception, on_unexpected)
