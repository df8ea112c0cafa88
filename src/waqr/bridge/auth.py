"""Authentication for the bridge: Bearer tokens on /admin/*, X-API-Key on the /wa/* aliases.

Comparisons are constant-time (``hmac.compare_digest``) against every configured token,
so neither the token's content nor which token matched leaks through timing. The credential
is checked first: a valid one always passes, so a stale token somewhere behind the same NAT or
reverse proxy can never lock the operator out. Only failures are counted; a client past the
limit within a minute gets 429 with Retry-After for its further failures. The failure table is
bounded (least recently failing clients are forgotten first), so spoofed addresses cannot grow
it without limit.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict, deque
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from waqr.http_errors import error_body

WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000  # failing clients remembered at once (each holds <= max_failures times)

bearer_scheme = HTTPBearer(auto_error=False, description="WA_QR_BRIDGE_TOKEN")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="WA_QR_API_KEY")


def matching_index(candidate: str, secrets: list[str]) -> int | None:
    """The 1-based position of the secret ``candidate`` equals, or None."""
    found = None
    for position, secret in enumerate(secrets, 1):  # no early exit: every one is compared
        if hmac.compare_digest(candidate.encode(), secret.encode()):
            found = position
    return found


class FailureLimiter:
    """Counts authentication failures per client over a sliding minute."""

    def __init__(
        self, max_failures: int, window: float = WINDOW_SECONDS, max_clients: int = MAX_CLIENTS
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def fail(self, client: str) -> int | None:
        """Record a failure of ``client``; the seconds it must wait when it is over the
        limit, else None."""
        now = time.monotonic()
        failures = self._failures.pop(client, None)
        if failures is None:
            failures = deque(maxlen=self.max_failures)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        over = len(failures) >= self.max_failures
        failures.append(now)
        self._failures[client] = failures  # most recent last
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
        if not over:
            return None
        return max(1, int(failures[0] + self.window - now) + 1)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _guard(
    request: Request, presented: str | None, secrets: list[str], challenge: str, kind: str
) -> None:
    position = matching_index(presented, secrets) if presented else None
    if position is not None:
        # Who asked, for the audit log: which credential by position, never its value.
        request.state.caller = f"{kind}#{position}"
        return  # a valid credential always passes, however many failures its client had
    limiter: FailureLimiter = request.app.state.auth_limiter
    request.app.state.metrics.auth_failures.inc()
    wait = limiter.fail(_client(request))
    if wait is not None:
        raise HTTPException(
            429,
            error_body("too_many_failures", f"too many failed authentications; retry in {wait} s"),
            headers={"Retry-After": str(wait)},
        )
    detail = "missing credential" if not presented else "invalid credential"
    raise HTTPException(
        401, error_body("unauthorized", detail), headers={"WWW-Authenticate": challenge}
    )


def require_bearer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    token = credentials.credentials if credentials else None
    _guard(request, token, request.app.state.settings.token_list, 'Bearer realm="waqr"', "token")


def require_api_key(request: Request, key: Annotated[str | None, Depends(api_key_scheme)]) -> None:
    _guard(
        request,
        key,
        request.app.state.settings.api_key_list,
        'ApiKey realm="waqr", header="X-API-Key"',
        "apikey",
    )


BearerAuth = Depends(require_bearer)
ApiKeyAuth = Depends(require_api_key)
