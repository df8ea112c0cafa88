"""Authentication for the bridge: Bearer tokens on /admin/*, X-API-Key on the /wa/* aliases.

Comparisons are constant-time (``hmac.compare_digest``) against every configured token,
so neither the token's content nor which token matched leaks through timing. A client that
fails too often within a minute gets 429 with Retry-After, whatever it sends next.
"""

from __future__ import annotations

import hmac
import time
from collections import defaultdict, deque
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from waqr.http_errors import error_body

WINDOW_SECONDS = 60.0

bearer_scheme = HTTPBearer(auto_error=False, description="WA_QR_BRIDGE_TOKEN")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="WA_QR_API_KEY")


def matches_any(candidate: str, secrets: list[str]) -> bool:
    found = False
    for secret in secrets:  # no early exit: every token is compared every time
        found |= hmac.compare_digest(candidate.encode(), secret.encode())
    return found


class FailureLimiter:
    """Counts authentication failures per client over a sliding minute."""

    def __init__(self, max_failures: int, window: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _prune(self, client: str, now: float) -> deque[float]:
        failures = self._failures[client]
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def retry_after(self, client: str) -> int | None:
        now = time.monotonic()
        failures = self._prune(client, now)
        if len(failures) < self.max_failures:
            return None
        return max(1, int(failures[0] + self.window - now) + 1)

    def record(self, client: str) -> None:
        self._failures[client].append(time.monotonic())


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _guard(request: Request, presented: str | None, secrets: list[str], challenge: str) -> None:
    limiter: FailureLimiter = request.app.state.auth_limiter
    client = _client(request)
    wait = limiter.retry_after(client)
    if wait is not None:
        raise HTTPException(
            429,
            error_body("too_many_failures", f"too many failed authentications; retry in {wait} s"),
            headers={"Retry-After": str(wait)},
        )
    if presented and secrets and matches_any(presented, secrets):
        return
    limiter.record(client)
    request.app.state.metrics.auth_failures.inc()
    detail = "missing credential" if not presented else "invalid credential"
    raise HTTPException(
        401, error_body("unauthorized", detail), headers={"WWW-Authenticate": challenge}
    )


def require_bearer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    token = credentials.credentials if credentials else None
    _guard(request, token, request.app.state.settings.token_list, 'Bearer realm="waqr"')


def require_api_key(request: Request, key: Annotated[str | None, Depends(api_key_scheme)]) -> None:
    _guard(
        request,
        key,
        request.app.state.settings.api_key_list,
        'ApiKey realm="waqr", header="X-API-Key"',
    )


BearerAuth = Depends(require_bearer)
ApiKeyAuth = Depends(require_api_key)
