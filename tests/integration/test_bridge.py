"""The bridge as a real process, in front of a real bot process, with a real Redis; and in
front of a stand-in bot on loopback where the bot must do something on cue (be slow, be in
backoff, change state at a given moment)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from tests.procs import (
    MisbehavingProxy,
    RedisServer,
    ServiceProcess,
    free_port,
    running_bot,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

# Throwaway test secrets, generated once with secrets.token_urlsafe(32): weak-looking ones such
# as "t" * 40 are refused by the settings (waqr.token_strength).
TOKEN = "in0GY5DuoqedeX-xR4clYcvA2hzppjZTziqet94o8qU"
OTHER_TOKEN = "AK_ey9B5ui-Xc72e58f5w2F3kAP5UxydQgKlVyqW7HE"
API_KEY = "btnALej19-E2FIiSM1vye_NrIbOQs4YnpsRS9D4UN90"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
REFUSED = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"


@contextlib.contextmanager
def running_bridge(workdir: Path, bot_url: str, **env: str) -> Iterator[ServiceProcess]:
    settings = {
        "WA_QR_BRIDGE_TOKEN": f"{TOKEN},{OTHER_TOKEN}",
        "BOT_URL": bot_url,
        "WAQR_AUTH_MAX_FAILURES": "1000",
        **env,
    }
    bridge = ServiceProcess(workdir, env=settings, command="api").start()
    try:
        yield bridge
    finally:
        bridge.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """A bot whose WhatsApp route is a proxy that refuses CONNECT, and a bridge before it."""
    root = tmp_path_factory.mktemp("stack")
    with (
        MisbehavingProxy(REFUSED) as proxy,
        running_bot(root / "bot", WA_PROXY=proxy.url) as bot,
        running_bridge(root / "api", bot.url, WA_QR_API_KEY=API_KEY, WAQR_BOT_TIMEOUT="5") as api,
    ):
        yield bot, api


class StandInBot:
    """A bot on loopback whose answers the test scripts, for what the real bot cannot be made
    to do on cue. It speaks the bot's routes; ``status`` is the GET /status body (replace it
    at will), ``qr`` the GET /qr body; a route put on ``hold`` answers only once released;
    every request is recorded as "METHOD /path?query". GET /events opens with a ``state``
    event (and a ``qr`` event when a QR is on offer), then streams whatever :meth:`push`
    sends; like the real bot, setting ``status`` or ``qr`` pushes the change. ``inbox`` is
    what GET /messages pages through (each message needs its ``seq``)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._status: dict[str, Any] = {"status": "connecting", "connected": False}
        self._qr: dict[str, Any] | None = None  # the GET /qr body; None: no QR on offer
        self.requests: list[str] = []
        self.inbox: list[dict[str, Any]] = []
        self._holds: dict[str, threading.Event] = {}
        self._listeners: set[asyncio.Queue[str]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        config = uvicorn.Config(
            self._app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def status(self) -> dict[str, Any]:
        return self._status

    @status.setter
    def status(self, body: dict[str, Any]) -> None:
        self._status = body
        if self._loop is not None:
            self.push("state", body)

    @property
    def qr(self) -> dict[str, Any] | None:
        return self._qr

    @qr.setter
    def qr(self, body: dict[str, Any] | None) -> None:
        self._qr = body
        if self._loop is not None:
            self.push("qr", self._qr_body())

    def _qr_body(self) -> dict[str, Any]:
        return self._qr or {"status": self._status["status"], "qr": None, "expires_in": None}

    def hold(self, path: str) -> None:
        self._holds[path] = threading.Event()

    def release(self, path: str) -> None:
        self._holds.pop(path).set()

    def count(self, request: str) -> int:
        return self.requests.count(request)

    def push(self, kind: str, data: dict[str, Any]) -> None:
        """Send an event to every /events listener, from the test's thread (the listeners'
        queues belong to the server's loop, and asyncio queues are not thread-safe)."""
        assert self._loop is not None, "nobody has opened GET /events yet"
        self._loop.call_soon_threadsafe(self._push, kind, data)

    def _push(self, kind: str, data: dict[str, Any]) -> None:
        for queue in self._listeners:
            queue.put_nowait(f"event: {kind}\ndata: {json.dumps(data)}\n\n")

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            query = f"?{request.url.query}" if request.url.query else ""
            self.requests.append(f"{request.method} {request.url.path}{query}")
            gate = self._holds.get(request.url.path)
            if gate is not None:
                await asyncio.to_thread(gate.wait)
            return await call_next(request)

        @app.get("/health")
        async def health() -> dict[str, Any]:
            return {"status": "ok"}

        @app.get("/status")
        async def status() -> dict[str, Any]:
            return dict(self.status)

        @app.get("/qr")
        async def qr() -> dict[str, Any]:
            return self._qr_body()

        @app.post("/reconnect", status_code=202)
        async def reconnect(reset: bool = False) -> dict[str, Any]:
            return {"accepted": True, "coalesced": False, "reset": reset, "status": "connecting"}

        @app.post("/pair-code")
        async def pair_code() -> dict[str, Any]:
            return {"code": "ABCD-EFGH", "phone": "+49*********78", "status": "pairing_code"}

        @app.post("/logout")
        async def logout() -> dict[str, Any]:
            return {"loggedOut": True, "unlinkedAtWhatsApp": True, "status": "logged_out"}

        @app.get("/messages")
        async def messages(after: int = 0, limit: int = 100) -> dict[str, Any]:
            return {"messages": [m for m in self.inbox if m["seq"] > after][:limit]}

        @app.get("/events")
        async def events() -> StreamingResponse:
            queue: asyncio.Queue[str] = asyncio.Queue()
            self._loop = asyncio.get_running_loop()
            self._listeners.add(queue)

            async def stream() -> AsyncIterator[str]:
                try:
                    yield f"event: state\ndata: {json.dumps(self.status)}\n\n"
                    if self._qr and self._qr.get("qr"):
                        yield f"event: qr\ndata: {json.dumps(self._qr)}\n\n"
                    while True:
                        yield await queue.get()
                finally:
                    self._listeners.discard(queue)

            return StreamingResponse(stream(), media_type="text/event-stream")

        return app

    def __enter__(self) -> StandInBot:
        self._thread.start()
        wait_until(lambda: httpx.get(self.url + "/health", timeout=2).status_code == 200, 10)
        return self

    def __exit__(self, *exc: object) -> None:
        for gate in self._holds.values():
            gate.set()
        self._server.should_exit = True
        self._thread.join(10)


def instant(offset: float) -> str:
    """The bot's wire form of the moment ``offset`` seconds from now."""
    moment = datetime.fromtimestamp(time.time() + offset, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    kind = ""
    for line in lines:
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            yield kind, json.loads(line[5:])


def operations(api: ServiceProcess) -> list[tuple[str, str]]:
    spec = api.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if path != "/healthz"
    ]


def documented(api: ServiceProcess, method: str, path: str) -> set[int]:
    """The statuses the OpenAPI document says ``method path`` may answer."""
    responses = api.get("/openapi.json").json()["paths"][path][method.lower()]["responses"]
    return {int(status) for status in responses}


def call(api: ServiceProcess, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    kwargs: dict = {"headers": headers, "timeout": 15}
    if path.endswith("/pair-code"):
        kwargs["json"] = {"phone": "+4915112345678"}
    if path.endswith("/events"):
        with httpx.stream(method, api.url + path, **kwargs) as response:
            response.read() if response.status_code != 200 else None
            return response
    return httpx.request(method, api.url + path, **kwargs)


def test_every_route_refuses_a_missing_or_wrong_credential(stack) -> None:
    _bot, api = stack
    routes = operations(api)
    assert len(routes) >= 12  # the enumeration itself must see the API
    for method, path in routes:
        alias = path.startswith("/wa/")
        wrong = {"X-API-Key": "w" * 40} if alias else {"Authorization": f"Bearer {'w' * 40}"}
        assert {401, 429} <= documented(api, method, path), (method, path)
        for headers in ({}, wrong):
            reply = call(api, method, path, headers)
            assert reply.status_code == 401, (method, path, headers)
            assert "WWW-Authenticate" in reply.headers
        if alias:  # the Bearer token is not an API key once WA_QR_API_KEY is set
            assert call(api, method, path, BEARER).status_code == 401


def test_every_route_accepts_its_credential(stack) -> None:
    _bot, api = stack
    for method, path in operations(api):
        alias = path.startswith("/wa/")
        headers = {"X-API-Key": API_KEY} if alias else BEARER
        reply = call(api, method, path, headers)
        assert reply.status_code not in (401, 403, 429), (method, path)
        assert reply.status_code < 500, (method, path, reply.text)
        assert reply.status_code in documented(api, method, path), (method, path, reply.text)


def test_either_configured_token_works_so_tokens_rotate_without_downtime(stack) -> None:
    _bot, api = stack
    for token in (TOKEN, OTHER_TOKEN):
        reply = api.get("/admin/wa/status", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 200


def test_healthz_is_open_and_says_nothing_else(stack) -> None:
    _bot, api = stack
    assert api.get("/healthz").json() == {"status": "ok"}


def test_status_speaks_for_the_bot_with_the_reason(stack) -> None:
    _bot, api = stack

    def reason_code(body: dict) -> str | None:
        return (body.get("lastDisconnectReason") or {}).get("code")

    body = wait_until(
        lambda: (
            reason_code(b := api.get("/admin/wa/status", headers=BEARER).json())
            == "connection_failure"
            and b
        ),
        30,
    )
    assert "Forbidden" in body["lastDisconnectReason"]["message"]
    assert body["cache"] == "memory"
    alias = api.get("/wa/status", headers={"X-API-Key": API_KEY}).json()
    assert alias["status"] in ("disconnected", "connecting")


def test_pair_code_input_is_validated_at_the_bridge(stack) -> None:
    _bot, api = stack
    reply = api.post("/admin/wa/pair-code", headers=BEARER, json={"phone": "12345"})
    assert reply.status_code == 422
    assert reply.json()["error"] == "invalid_request"
    assert "must start with '+'" in reply.json()["detail"]


def test_metrics_are_prometheus_text(stack) -> None:
    _bot, api = stack
    body = api.get("/metrics", headers=BEARER).text
    assert "waqr_bridge_auth_failures_total" in body


def test_cors_allows_exactly_the_configured_origins(tmp_path: Path) -> None:
    origin = "https://ui.example.org"
    with running_bridge(
        tmp_path, "http://127.0.0.1:9", STREAMLIT_ORIGIN=f"{origin},https://b.example"
    ) as api:
        preflight = {"Origin": origin, "Access-Control-Request-Method": "GET"}
        allowed = httpx.options(api.url + "/admin/wa/status", headers=preflight)
        assert allowed.headers.get("access-control-allow-origin") == origin
        other = {**preflight, "Origin": "https://evil.example"}
        refused = httpx.options(api.url + "/admin/wa/status", headers=other)
        assert "access-control-allow-origin" not in refused.headers


def test_repeated_failures_get_429_and_a_valid_token_still_passes(tmp_path: Path) -> None:
    with running_bridge(tmp_path, "http://127.0.0.1:9", WAQR_AUTH_MAX_FAILURES="3") as api:
        wrong = {"Authorization": "Bearer " + "w" * 40}
        codes = [api.get("/admin/wa/status", headers=wrong).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        throttled = api.get("/admin/wa/status", headers=wrong)
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        with httpx.Client(base_url=api.url, timeout=10) as client:
            for _ in range(1000):  # a stale token somewhere behind the same address
                client.get("/admin/wa/status", headers=wrong)
            # The operator is never locked out: the bot is down here, and that is what it hears.
            valid = client.get("/admin/wa/status", headers=BEARER)
        assert valid.status_code == 503
        assert valid.json()["error"] == "bot_unreachable"


def test_the_api_key_may_reconnect_but_never_wipe_credentials(tmp_path: Path) -> None:
    with running_bridge(tmp_path, "http://127.0.0.1:9", WA_QR_API_KEY=API_KEY) as api:
        key = {"X-API-Key": API_KEY}
        refused = api.post("/wa/connect", params={"reset": "true"}, headers=key)
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"
        assert "admin token" in refused.json()["detail"]
        plain = api.post("/wa/connect", headers=key)
        assert plain.status_code == 503  # allowed; the bot is down here


def test_a_stopped_bot_is_503_bot_unreachable(tmp_path: Path) -> None:
    with running_bridge(tmp_path, f"http://127.0.0.1:{free_port()}") as api:
        for path in ("/admin/wa/status", "/admin/wa/qr"):
            reply = api.get(path, headers=BEARER)
            assert reply.status_code == 503
            assert reply.json()["error"] == "bot_unreachable"
            assert reply.json()["detail"]


def test_a_bot_too_slow_to_answer_is_504(tmp_path: Path) -> None:
    with (
        MisbehavingProxy(None) as silent,  # accepts, reads, never answers: a hung bot
        running_bridge(tmp_path, silent.url, WAQR_BOT_TIMEOUT="1") as api,
    ):
        reply = api.get("/admin/wa/status", headers=BEARER)
        assert reply.status_code == 504
        assert reply.json()["error"] == "bot_timeout"


def test_the_bridge_refuses_to_start_without_a_long_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WA_QR_BRIDGE_TOKEN"}
    missing = subprocess.run(
        [sys.executable, "-m", "waqr.cli", "api"], env=env, capture_output=True, timeout=30
    )
    assert missing.returncode == 2
    assert b"WA_QR_BRIDGE_TOKEN is required" in missing.stderr
    short = subprocess.run(
        [sys.executable, "-m", "waqr.cli", "api"],
        env={**env, "WA_QR_BRIDGE_TOKEN": "short"},
        capture_output=True,
        timeout=30,
    )
    assert short.returncode == 2
    assert b"at least 32 characters" in short.stderr
    assert b"short" not in short.stderr.replace(b"shorter", b"")


def test_redis_down_degrades_the_cache_and_recovers_by_itself(tmp_path: Path, stack) -> None:
    bot, _api = stack
    redis = RedisServer(tmp_path / "redis").start()
    try:
        with running_bridge(tmp_path / "api", bot.url, REDIS_URL=redis.url) as api:
            assert api.get("/admin/wa/status", headers=BEARER).json()["cache"] == "ok"
            redis.stop()
            # The very next status says so: it asks Redis, it does not wait for a cache call
            # to fail first.
            degraded = api.get("/admin/wa/status", headers=BEARER)
            assert degraded.status_code == 200
            assert degraded.json()["cache"] == "degraded"
            wait_until(lambda: api.get("/admin/wa/qr", headers=BEARER).status_code == 200, 10)
            metrics = api.get("/metrics", headers=BEARER).text
            assert "waqr_bridge_cache_degraded 1.0" in metrics
            redis.start()
            wait_until(
                lambda: api.get("/admin/wa/status", headers=BEARER).json()["cache"] == "ok", 30
            )
    finally:
        redis.stop()


def test_two_bridges_run_one_keepalive_leader(tmp_path: Path, stack) -> None:
    bot, _api = stack
    redis = RedisServer(tmp_path / "redis").start()
    env = {"REDIS_URL": redis.url, "KEEPALIVE_INTERVAL": "0.5"}
    try:
        with (
            running_bridge(tmp_path / "a", bot.url, **env) as first,
            running_bridge(tmp_path / "b", bot.url, **env) as second,
        ):

            def leaders() -> list[bool]:
                return [
                    b.get("/admin/wa/status", headers=BEARER).json()["bridge"]["keepalive"][
                        "leader"
                    ]
                    for b in (first, second)
                ]

            wait_until(lambda: sorted(leaders()) == [False, True], 15)
            for _ in range(5):  # stays exactly one over several intervals
                assert sorted(leaders()) == [False, True]
                time.sleep(0.3)
            leader, follower = (first, second) if leaders()[0] else (second, first)
            os.killpg(leader.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            wait_until(
                lambda: follower.get("/admin/wa/status", headers=BEARER).json()["bridge"][
                    "keepalive"
                ]["leader"],
                20,
            )
    finally:
        redis.stop()


def test_without_redis_every_replica_keeps_the_keepalive_going(tmp_path: Path, stack) -> None:
    bot, _api = stack
    redis = RedisServer(tmp_path / "redis").start()
    env = {"REDIS_URL": redis.url, "KEEPALIVE_INTERVAL": "0.5"}
    try:
        with (
            running_bridge(tmp_path / "a", bot.url, **env) as first,
            running_bridge(tmp_path / "b", bot.url, **env) as second,
        ):

            def keepalives() -> list[dict[str, Any]]:
                return [
                    b.get("/admin/wa/status", headers=BEARER).json()["bridge"]["keepalive"]
                    for b in (first, second)
                ]

            wait_until(
                lambda: sorted(k["lock"] for k in keepalives()) == ["held", "held_by_another"], 15
            )
            redis.stop()
            wait_until(
                lambda: all(k["lock"] == "redis_unreachable" and k["leader"] for k in keepalives()),
                20,
            )
            # ...and both go on ticking (the follower too, which had not been running it).
            before = [k["at"] for k in keepalives()]
            wait_until(
                lambda: all(k["at"] > at for k, at in zip(keepalives(), before, strict=True)),
                20,
            )
            for bridge in (first, second):
                assert bridge.logs().count("running without the leader lock") == 1
            redis.start()
            wait_until(
                lambda: sorted(k["lock"] for k in keepalives()) == ["held", "held_by_another"], 30
            )
            assert all("leader lock in use again" in b.logs() for b in (first, second))
    finally:
        redis.stop()


def test_keepalive_nudges_only_a_bot_that_will_not_retry_by_itself(tmp_path: Path) -> None:
    with (
        StandInBot() as bot,
        running_bridge(tmp_path, bot.url, KEEPALIVE_INTERVAL="0.2") as api,
    ):

        def ticks_see(status: dict[str, Any]) -> None:
            """Serve ``status`` until three keepalive ticks have ended (each ends by
            peeking at the QR, after any nudge of its own)."""
            bot.status = status
            seen = bot.count("GET /qr?peek=true")
            wait_until(lambda: bot.count("GET /qr?peek=true") >= seen + 3, 15)

        ticks_see({"status": "disconnected", "retrying": True, "nextRetryAt": instant(30)})
        ticks_see({"status": "disconnected", "retrying": True, "nextRetryAt": None})  # grace
        ticks_see({"status": "disconnected", "nextRetryAt": instant(30)})  # an older bot
        ticks_see({"status": "disconnected", "retrying": False, "nextRetryAt": instant(-1)})
        assert [r for r in bot.requests if r.startswith("POST")] == []
        assert '"action": "reconnect"' not in api.logs()

        ticks_see({"status": "disconnected", "retrying": False, "nextRetryAt": instant(-60)})
        wait_until(lambda: bot.count("POST /reconnect?reset=false") >= 1, 10)
        bot.status = {"status": "disconnected", "retrying": False, "nextRetryAt": None}
        nudges = bot.count("POST /reconnect?reset=false")
        wait_until(lambda: bot.count("POST /reconnect?reset=false") > nudges, 10)
        wait_until(lambda: '"action": "reconnect"' in api.logs(), 10)
    posts = {r for r in bot.requests if r.startswith("POST")}
    assert posts == {"POST /reconnect?reset=false"}  # never a reset: that would wipe a link


@pytest.mark.parametrize(
    ("route", "bot_route", "body"),
    [
        ("/admin/wa/pair-code", "/pair-code", {"phone": "+4915112345678"}),
        ("/admin/wa/logout", "/logout", None),
    ],
)
def test_pair_code_and_logout_outlast_the_ordinary_bot_timeout(
    tmp_path: Path, route: str, bot_route: str, body: dict[str, str] | None
) -> None:
    with StandInBot() as bot:
        bot.hold("/events")  # the bridge cannot follow the bot: its reads ask the bot
        with (
            running_bridge(tmp_path, bot.url, WAQR_BOT_TIMEOUT="0.5") as api,
            ThreadPoolExecutor(1) as pool,
        ):
            assert 504 in documented(api, "POST", route)
            bot.hold(bot_route)
            bot.hold("/qr")
            slow = pool.submit(api.post, route, headers=BEARER, json=body)
            wait_until(lambda: bot.count(f"POST {bot_route}") == 1, 10)
            # Begun after the slow call, an ordinary read runs out of WAQR_BOT_TIMEOUT...
            read = api.get("/admin/wa/qr", headers=BEARER)
            assert read.status_code == 504
            assert read.json()["error"] == "bot_timeout"
            # ...while the slow call is still being waited for, and gets its answer.
            assert not slow.done()
            bot.release(bot_route)
            reply = slow.result(30)
    assert reply.status_code == 200, reply.text


def test_pair_code_still_gives_up_after_its_own_bound(tmp_path: Path) -> None:
    with (
        StandInBot() as bot,
        running_bridge(tmp_path, bot.url, WAQR_BOT_TIMEOUT="5", WAQR_BOT_PAIR_TIMEOUT="0.5") as api,
    ):
        bot.hold("/pair-code")
        reply = api.post("/admin/wa/pair-code", headers=BEARER, json={"phone": "+4915112345678"})
        assert reply.status_code == 504
        assert reply.json()["error"] == "bot_timeout"
        assert "/pair-code" in reply.json()["detail"]


def test_status_and_events_answer_from_what_the_bot_pushed(tmp_path: Path) -> None:
    with (
        StandInBot() as bot,
        running_bridge(tmp_path, bot.url, KEEPALIVE_INTERVAL="3600") as api,
    ):
        wait_until(
            lambda: api.get("/admin/wa/status", headers=BEARER).json()["bridge"]["pushConnected"],
            15,
        )
        bot.status = {"status": "connecting", "connected": False, "seq": 0}  # what GET says
        asked = bot.count("GET /status")  # the keepalive's first tick
        bot.push("state", {"status": "disconnected", "connected": False, "seq": 1})
        pushed = wait_until(
            lambda: (s := api.get("/admin/wa/status", headers=BEARER).json())["seq"] == 1 and s,
            10,
        )
        assert pushed["source"] == "push" and pushed["status"] == "disconnected"
        assert bot.count("GET /status") == asked  # the bot was not asked
        with httpx.stream(
            "GET", api.url + "/admin/wa/events", headers=BEARER, timeout=10
        ) as stream:
            assert stream.status_code == 200
            events = sse_events(stream.iter_lines())
            kind, snapshot = next(events)
            assert (kind, snapshot["seq"], snapshot["source"]) == ("state", 1, "push")
            bot.push("state", {"status": "connecting", "connected": False, "seq": 2})
            try:
                for kind, data in events:
                    if kind == "state" and data.get("seq") == 2:
                        break
            except httpx.ReadTimeout:
                pytest.fail("a change pushed after the snapshot never arrived")


def test_polled_reads_are_answered_from_the_push_without_asking_the_bot(tmp_path: Path) -> None:
    origin = "https://ui.example"
    with (
        StandInBot() as bot,
        running_bridge(
            tmp_path,
            bot.url,
            KEEPALIVE_INTERVAL="3600",
            STREAMLIT_ORIGIN=origin,
            WA_QR_API_KEY=API_KEY,
        ) as api,
    ):
        bot.status = {"status": "qr_ready", "connected": False}
        bot.qr = {"status": "qr_ready", "qr": "2@pushed", "expires_in": 60.0}
        wait_until(lambda: api.get("/admin/wa/qr", headers=BEARER).json()["qr"] == "2@pushed", 15)
        asked = bot.count("GET /qr")
        key = {"X-API-Key": API_KEY}
        for headers, path in ((BEARER, "/admin/wa/qr"), (key, "/wa/qr")) * 10:
            answer = api.get(path, headers={**headers, "Origin": origin})
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json"
            assert answer.headers["access-control-allow-origin"] == origin  # CORS still applies
            body = answer.json()
            assert (body["qr"], body["source"]) == ("2@pushed", "push")
            assert 0 < body["expires_in"] <= 60.0
        # A listener that opens the event stream now learns the state, then the code on offer.
        with httpx.stream("GET", api.url + "/admin/wa/events", headers=BEARER, timeout=10) as sse:
            events = sse_events(sse.iter_lines())
            assert next(events)[0] == "state"
            kind, data = next(events)
            assert (kind, data["qr"]) == ("qr", "2@pushed")
        # At most the bot's reminder that someone waits for a QR, not one request per read.
        assert bot.count("GET /qr") - asked <= 1
        # The gate still guards them.
        refused = api.get("/admin/wa/qr", headers={"Authorization": "Bearer " + "w" * 40})
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert api.get("/wa/status").status_code == 401
        # And the request metrics still count them, under their routes.
        metrics = api.get("/metrics", headers=BEARER).text
        counted = re.search(
            r'http_requests_total\{handler="/admin/wa/qr",method="GET",status="2xx"\} (\d+)',
            metrics,
        )
        assert counted is not None and float(counted.group(1)) >= 10

        # A read after a code ran out waits for the bot's next push and answers with it: the
        # bot may hold the next code already, so "no code" would be stale.
        bot.qr = {"status": "qr_ready", "qr": "2@short", "expires_in": 0.5}
        wait_until(lambda: api.get("/admin/wa/qr", headers=BEARER).json()["qr"] == "2@short", 10)
        time.sleep(0.6)  # past its expiry
        with ThreadPoolExecutor(1) as pool:
            read = pool.submit(api.get, "/admin/wa/qr", headers=BEARER)
            time.sleep(0.2)
            bot.qr = {"status": "qr_ready", "qr": "2@next", "expires_in": 20.0}
            answer = read.result(10).json()
        assert (answer["qr"], answer["source"]) == ("2@next", "push")
        # A state without codes is answered from the push as the bot would, unasked.
        bot.status = {"status": "connecting", "connected": False}
        after = wait_until(
            lambda: (b := api.get("/admin/wa/qr", headers=BEARER).json())["qr"] is None and b, 10
        )
        assert after == {"status": "connecting", "qr": None, "expires_in": None, "source": "push"}
        assert bot.count("GET /qr") - asked <= 2


def test_event_streams_end_when_the_bridge_loses_the_bot(tmp_path: Path) -> None:
    """A listener must not go on showing the last state of a bot that is gone."""
    bot = StandInBot().__enter__()
    try:
        with running_bridge(tmp_path, bot.url, KEEPALIVE_INTERVAL="3600") as api:
            wait_until(
                lambda: api.get("/admin/wa/status", headers=BEARER).json()["source"] == "push",
                15,
            )
            with httpx.stream(
                "GET", api.url + "/admin/wa/events", headers=BEARER, timeout=30
            ) as stream:
                lines = stream.iter_lines()
                assert next(lines) == "event: state"
                bot.__exit__()  # the bot goes away; its stream to the bridge breaks
                rest = list(lines)  # ends: the bridge closed the stream
            assert not any(line.startswith("event: state") for line in rest)
            down = api.get("/admin/wa/status", headers=BEARER)
            assert down.status_code == 503 and down.json()["error"] == "bot_unreachable"
    finally:
        bot.__exit__()


def test_events_relay_the_bots_state(stack) -> None:
    _bot, api = stack
    with httpx.stream("GET", api.url + "/admin/wa/events", headers=BEARER, timeout=10) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data:"):
                first = json.loads(line[5:])
                break
    assert first["status"] in ("connecting", "disconnected")
    assert "cache" in first


def test_every_state_changing_call_is_audited_without_secrets(tmp_path: Path) -> None:
    with running_bridge(tmp_path, "http://127.0.0.1:9", WA_QR_API_KEY=API_KEY) as api:
        other = {"Authorization": f"Bearer {OTHER_TOKEN}"}
        api.post("/admin/wa/reconnect", params={"reset": "true"}, headers=other)
        api.post("/admin/wa/pair-code", json={"phone": "+4915112345678"}, headers=BEARER)
        api.post("/wa/connect", params={"reset": "true"}, headers={"X-API-Key": API_KEY})
        api.get("/admin/wa/status", headers=BEARER)  # a read is not audited
        records = [
            json.loads(line) for line in api.logs().splitlines() if '"logger": "waqr.audit"' in line
        ]
    seen = [(r["action"], r["caller"], r["outcome"]) for r in records]
    assert seen == [
        ("relink", "token#2", 503),
        ("pair_code", "token#1", 503),
        ("relink", "apikey#1", 403),
    ]
    assert all(r["client"] == "127.0.0.1" for r in records)
    logs = api.logs()
    for secret in (TOKEN, OTHER_TOKEN, API_KEY, "15112345678"):
        assert secret not in logs


def test_the_audit_log_names_the_person_a_client_acts_for(tmp_path: Path) -> None:
    with running_bridge(tmp_path, "http://127.0.0.1:9") as api:
        acting = {**BEARER, "X-Waqr-User": "ana@example.org"}
        api.post("/admin/wa/logout", headers=acting)
        api.post("/admin/wa/reconnect", headers=BEARER)
        records = [
            json.loads(line) for line in api.logs().splitlines() if '"logger": "waqr.audit"' in line
        ]
    seen = [(r["action"], r["caller"], r.get("user")) for r in records]
    assert seen == [("logout", "token#1", "ana@example.org"), ("reconnect", "token#1", None)]
