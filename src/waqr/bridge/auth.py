"""Authentication for the bridge: Bearer tokens on /admin/*, X-API-Key on the /wa/* aliases.

Comparisons are constant-time (``hmac.compare_digest``) against every configured token,
so neither the token's content nor which token matched leaks through timing. The credential
is checked first: a valid one always passes, so a stale token somewhere behind the same NAT or
reverse proxy can never lock the operator out. Only failures are counted; a client past the
limit within a minute gets 429 with Retry-After for its further failures. The failure table is
bounded (least recently failing clients are forgotten first), so spoofed addresses cannot grow
it without limit, and a client whose last failure is older than the window is forgotten.

The gate (``waqr.bridge.gate``) runs :func:`authenticate` on every guarded path before any
body is read; the route dependencies below run it again, for the OpenAPI document's security
schemes and as the backstop should a route ever sit outside the gate's prefixes.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import State

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
        self._forget_before(now - self.window)
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

    def _forget_before(self, moment: float) -> None:
        # The table is ordered by last failure, so the expired clients are all at its front.
        while self._failures:
            _client, failures = next(iter(self._failures.items()))
            if failures and failures[-1] > moment:
                return
            self._failures.popitem(last=False)


@dataclass(frozen=True)
class Scheme:
    """One kind of credential: what the audit log calls it, and the 401's challenge."""

    kind: str
    challenge: str

    def secrets(self, state: State) -> list[str]:
        settings = state.settings
        secrets: list[str] = settings.token_list if self.kind == "token" else settings.api_key_list
        return secrets


BEARER = Scheme("token", 'Bearer realm="waqr"')
API_KEY = Scheme("apikey", 'ApiKey realm="waqr", header="X-API-Key"')


class AuthRefused(Exception):
    """A request without a valid credential: the status, body and headers to answer with."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        super().__init__(body["detail"])
        self.status = status
        self.body = body
        self.headers = headers


def authenticate(state: State, scheme: Scheme, presented: str | None, client: str) -> str:
    """Who is asking (``"token#1"``: which credential by position, never its value), or
    AuthRefused. ``state`` is the app's: settings, auth_limiter, metrics."""
    position = matching_index(presented, scheme.secrets(state)) if presented else None
    if position is not None:
        return f"{scheme.kind}#{position}"  # valid always passes, however many failures before
    limiter: FailureLimiter = state.auth_limiter
    state.metrics.auth_failures.inc()
    wait = limiter.fail(client)
    if wait is not None:
        detail = f"too many failed authentications; retry in {wait} s"
        raise AuthRefused(429, error_body("too_many_failures", detail), {"Retry-After": str(wait)})
    detail = "missing credential" if not presented else "invalid credential"
    challenge = {"WWW-Authenticate": scheme.challenge}
    raise AuthRefused(401, error_body("unauthorized", detail), challenge)


def _guard(request: Request, presented: str | None, scheme: Scheme) -> None:
    client = request.client.host if request.client else "unknown"
    try:
        request.state.caller = authenticate(request.app.state, scheme, presented, client)
    except AuthRefused as refused:
        raise HTTPException(refused.status, refused.body, headers=refused.headers) from None


# Async although they never await: FastAPI runs a sync dependency in its thread pool, a
# thread hop per request for a few microseconds of work.
async def require_bearer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    _guard(request, credentials.credentials if credentials else None, BEARER)


async def require_api_key(
    request: Request, key: Annotated[str | None, Depends(api_key_scheme)]
) -> None:
    _guard(request, key, API_KEY)


BearerAuth = Depends(require_bearer)
ApiKeyAuth = Depends(require_api_key)
