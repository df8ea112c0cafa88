"""The bridge's HTTP API: the public face of waqr.

Bearer routes under ``/admin/wa/*``; the original deployment's aliases ``/wa/status``,
``/wa/qr`` and ``/wa/connect`` take ``X-API-Key`` and run the same handlers. ``/healthz`` is
open and says nothing but "ok"; ``/metrics`` takes the Bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from prometheus_fastapi_instrumentator import Instrumentator
from sse_starlette.sse import EventSourceResponse

from waqr import __version__
from waqr.api_models import (
    IdempotencyKey,
    InboxAfter,
    InboxLimit,
    PairCodeRequest,
    SendMessageRequest,
)
from waqr.bridge import examples
from waqr.bridge.audit import audited
from waqr.bridge.auth import ApiKeyAuth, BearerAuth, FailureLimiter
from waqr.bridge.botclient import BotClient
from waqr.bridge.cache import QrCache, RedisQrCache, make_cache
from waqr.bridge.fastpath import PushedAnswers
from waqr.bridge.gate import Gate
from waqr.bridge.keepalive import Keepalive, LeaderLock
from waqr.bridge.metrics import BridgeMetrics
from waqr.bridge.relay import EventRelay
from waqr.errors import BotError, BotTimeout, BotUnreachable
from waqr.http_errors import error_body, install_error_handlers
from waqr.qr_render import qr_image_response
from waqr.settings import Settings
from waqr.tasks import cancel, spawn

# How often a QR answered from the push path tells the bot that someone waits for a QR. The
# bot keeps QR batches coming for WAQR_QR_DEMAND_WINDOW (180 s) after the last such signal.
DEMAND_EVERY = 5.0

API_KEY_CANNOT_WIPE = (
    "the API key may reconnect but not wipe credentials; use the admin token for a relink"
)
ResetParam = Annotated[bool, Query(description="Wipe credentials first: a fresh link (relink).")]


class Bridge:
    """Everything one bridge process holds: the bot client, cache, relay and keepalive."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot = BotClient(
            settings.bot_url,
            timeout=settings.bot_timeout,
            pair_timeout=settings.bot_pair_timeout,
            logout_timeout=settings.bot_logout_timeout,
            # The doctor's network steps each have their bound, the Noise wait its own; the
            # bot's answer may take them all, plus a TLS re-inspection.
            diagnose_timeout=settings.doctor_timeout * 6 + settings.doctor_noise_timeout + 5,
            token=settings.bot_token.split(",", 1)[0] if settings.bot_token else None,
            ca_file=settings.bot_ca_file,
        )
        self.cache: QrCache = make_cache(settings.redis_url)
        self.metrics = BridgeMetrics()
        self.relay = EventRelay(self.bot, self.cache, on_bot=self.metrics.observe_bot)
        leader = None
        if isinstance(self.cache, RedisQrCache):
            leader = LeaderLock(self.cache.client, ttl=settings.keepalive_interval * 2 + 5)
        self._demand_noted = -DEMAND_EVERY
        self._demand_task: asyncio.Task[None] | None = None
        self.keepalive = Keepalive(
            self.bot, self.cache, settings.keepalive_interval, leader, self.metrics.observe_bot
        )

    async def status(self) -> dict[str, Any]:
        """The bot's status: as the bot pushed it while its event stream is up (the bot
        pushes every change), asked of the bot otherwise. ``source`` says which."""
        pushed = await self.pushed_status()
        if pushed is not None:
            return pushed
        try:
            body = await self.bot.status()
        except BotError as exc:
            self.metrics.bot_errors.labels(kind=type(exc).__name__).inc()
            self.metrics.observe_bot(None)
            raise
        self.metrics.observe_bot(str(body.get("status")))
        return await self._with_bridge(body, "bot")

    async def pushed_status(self) -> dict[str, Any] | None:
        """The status as the bot pushed it; None while its event stream is down."""
        body = self.relay.pushed_status()
        return None if body is None else await self._with_bridge(body, "push")

    async def _with_bridge(self, body: dict[str, Any], source: str) -> dict[str, Any]:
        body["source"] = source
        body["cache"] = await self.cache.health()
        body["bridge"] = {
            "pushConnected": self.relay.connected,
            "keepalive": {
                "leader": self.keepalive.is_leader,
                "lock": self.keepalive.lock.value,
                **self.keepalive.last,
            },
        }
        return body

    async def qr(self) -> dict[str, Any]:
        """The QR the bot holds now (promise 1). While the bot's event stream is up, that is
        the QR it pushed last, its lifetime counted down here; the bot still learns that
        someone waits for a QR (at most every few seconds). Otherwise the bot is asked;
        only when the bot is alive but too slow to answer does the cache speak, and it
        holds nothing past the QR's own expiry. A bot that is down has taken its engine,
        and its QR, with it."""
        pushed = await self.pushed_qr()
        if pushed is not None:
            return pushed
        try:
            body = await self.bot.qr()
        except BotTimeout:
            cached = await self.cache.get()
            if cached is None:
                raise
            self.metrics.qr_served.labels(source="cache").inc()
            return {
                "status": "qr_ready",
                "qr": cached.code,
                "expires_in": round(cached.expires_in(), 1),
                "source": "cache",
            }
        except BotUnreachable:
            await self.cache.clear()
            raise
        if body.get("qr") and body.get("expires_in"):
            await self.cache.put(str(body["qr"]), float(body["expires_in"]))
        self.metrics.qr_served.labels(source="bot").inc()
        return {**body, "source": "bot"}

    async def pushed_qr(self) -> dict[str, Any] | None:
        """The QR answer from what the bot pushed (its live code, the next one when the last
        ran out, or why there is none); None while its event stream is down or the next code
        did not come in time."""
        pushed = self.relay.pushed_qr()
        if pushed is None and self.relay.connected:
            pushed = await self.relay.next_code()  # a code ran out: the next one is due
        if pushed is None:
            return None
        self._note_demand()
        self.metrics.qr_served.labels(source="push").inc()
        return {**pushed, "source": "push"}

    def _note_demand(self) -> None:
        """Tell the bot a person waits for a QR (its /qr does), so that QR batches keep
        coming; at most once per DEMAND_EVERY seconds, in the background."""
        now = time.monotonic()
        if now - self._demand_noted < DEMAND_EVERY or (
            self._demand_task is not None and not self._demand_task.done()
        ):
            return
        self._demand_noted = now

        async def note() -> None:
            with contextlib.suppress(BotError):
                await self.bot.qr()

        self._demand_task = spawn(note(), name="bridge-qr-demand")

    async def close(self) -> None:
        await cancel(self._demand_task)
        if self.keepalive.leader is not None:
            await self.keepalive.leader.release()
        await self.bot.close()
        await self.cache.close()


def _bridge(request: Request) -> Bridge:
    bridge: Bridge = request.app.state.bridge
    return bridge


def create_app(settings: Settings, *, background: bool = True) -> FastAPI:
    bridge = Bridge(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if background:
            tasks = [
                spawn(bridge.relay.run(), name="bridge-relay"),
                spawn(bridge.keepalive.run(), name="bridge-keepalive"),
            ]
        # What exists now (the app, its routes, the settings) lives as long as the process:
        # out of the collector's sight, the full collections under load stop scanning it
        # (they showed as the bridge's p99 latency).
        gc.freeze()
        try:
            yield
        finally:
            for task in tasks:
                await cancel(task)
            await bridge.close()

    # Swagger UI and ReDoc from files shipped in fastapi-offline, not a CDN: /docs works on
    # a server without internet access.
    app = FastAPIOffline(
        title="waqr bridge",
        version=__version__,
        description=(
            "The public API of waqr: link, watch and repair the WhatsApp session. "
            "`/admin/wa/*` takes `Authorization: Bearer $WA_QR_BRIDGE_TOKEN`; the aliases "
            "`/wa/*` take `X-API-Key`."
        ),
        lifespan=lifespan,
    )
    app.state.bridge = bridge
    app.state.settings = settings
    app.state.metrics = bridge.metrics
    app.state.auth_limiter = FailureLimiter(settings.auth_max_failures)
    install_error_handlers(app)
    # Innermost: the polled reads answered from what the bot pushed, past the gate's checks.
    pushed = {"qr": bridge.pushed_qr, "status": bridge.pushed_status}
    app.add_middleware(
        PushedAnswers,
        answers={
            f"{prefix}/{name}": get
            for prefix in ("/admin/wa", "/wa")
            for name, get in pushed.items()
        },
    )
    # Added before CORS, so it sits inside CORS: a preflight is answered before it, and its own
    # refusals still carry the CORS headers a browser needs to read them.
    app.add_middleware(
        Gate,
        trusted_proxies=settings.trusted_proxies,
        max_body_bytes=settings.max_body_bytes,
    )
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
        )

    admin = APIRouter(prefix="/admin/wa", dependencies=[BearerAuth], tags=["admin"])
    alias = APIRouter(prefix="/wa", dependencies=[ApiKeyAuth], tags=["aliases"])

    async def status(request: Request) -> dict[str, Any]:
        """The session's state, reason, account and the bridge's own health (``cache``)."""
        return await _bridge(request).status()

    async def qr(request: Request) -> dict[str, Any]:
        """The QR the engine holds now, with its true remaining lifetime in seconds."""
        return await _bridge(request).qr()

    async def reconnect(request: Request, reset: ResetParam = False) -> dict[str, Any]:
        """Reconnect in the background, keeping credentials unless ``reset=true``."""
        async with audited(request, "relink" if reset else "reconnect", success=202):
            return await _bridge(request).bot.reconnect(reset=reset)

    for router in (admin, alias):
        router.add_api_route(
            "/status", status, methods=["GET"], responses=examples.ok(examples.STATUS)
        )
        router.add_api_route("/qr", qr, methods=["GET"], responses=examples.ok(examples.QR))
    admin.add_api_route(
        "/reconnect",
        reconnect,
        methods=["POST"],
        status_code=202,
        responses=examples.ok(examples.RECONNECT, 202, also=(422,)),
    )

    async def connect(request: Request, reset: ResetParam = False) -> dict[str, Any]:
        """Reconnect in the background, keeping credentials. The API key may not wipe them:
        ``reset=true`` is refused (403); a relink takes the admin token."""
        async with audited(request, "relink" if reset else "reconnect", success=202):
            if reset:
                raise HTTPException(403, error_body("forbidden", API_KEY_CANNOT_WIPE))
            return await _bridge(request).bot.reconnect(reset=False)

    alias.add_api_route(
        "/connect",
        connect,
        methods=["POST"],
        status_code=202,
        responses=examples.ok(examples.RECONNECT, 202, also=(403, 422)),
    )

    @admin.get("/qr.png", response_class=Response, responses=examples.image("image/png"))
    async def qr_png(request: Request) -> Response:
        """The current QR as a PNG image."""
        return qr_image_response(await _bridge(request).qr(), "png")

    @admin.get("/qr.svg", response_class=Response, responses=examples.image("image/svg+xml"))
    async def qr_svg(request: Request) -> Response:
        """The current QR as an SVG image."""
        return qr_image_response(await _bridge(request).qr(), "svg")

    @admin.post("/logout", responses=examples.ok(examples.LOGOUT))
    async def logout(request: Request) -> dict[str, Any]:
        """Unlink the device at WhatsApp, wipe credentials, offer a fresh link."""
        async with audited(request, "logout"):
            return await _bridge(request).bot.logout()

    @admin.post("/pair-code", responses=examples.ok(examples.PAIR_CODE, also=(400, 409, 422)))
    async def pair_code(request: Request, body: PairCodeRequest) -> dict[str, Any]:
        """Link by phone number: returns the 8-character code to type on the phone."""
        async with audited(request, "pair_code"):
            return await _bridge(request).bot.pair_code("+" + body.phone)

    @admin.post(
        "/messages",
        status_code=202,
        responses=examples.ok(examples.MESSAGE, 202, also=(400, 409, 422)),
    )
    async def send_message(
        request: Request,
        body: SendMessageRequest,
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Send a text through the linked account (queued durably by the bot; 202 with its
        id). 409 when not linked, 422 for a bad recipient or text, 429 with ``Retry-After``
        past the bot's send rate limit."""
        async with audited(request, "send_message", success=202):
            return await _bridge(request).bot.send_message(body.model_dump(), idempotency_key)

    @admin.get("/messages/{message_id}", responses=examples.ok(examples.MESSAGE, also=(404, 422)))
    async def get_message(request: Request, message_id: str) -> dict[str, Any]:
        """A sent message's status and latest receipt (sent, delivered, read)."""
        return await _bridge(request).bot.message(message_id)

    @admin.get("/messages", responses=examples.ok(examples.INBOX, also=(422,)))
    async def list_messages(
        request: Request, after: InboxAfter = 0, limit: InboxLimit = 100
    ) -> dict[str, Any]:
        """Incoming messages, oldest first, after the ``seq`` given: page on with the last
        ``seq`` you got. New ones also arrive as ``message`` events on ``/events``."""
        return await _bridge(request).bot.inbox(after, limit)

    @admin.get("/webhooks/failed", responses=examples.ok(examples.FAILED_WEBHOOKS))
    async def failed_webhooks(request: Request) -> dict[str, Any]:
        """Webhook deliveries the bot gave up after WAQR_WEBHOOK_RETRY_PERIOD."""
        return await _bridge(request).bot.failed_webhooks()

    @admin.post("/webhooks/failed/replay", responses=examples.ok({"replayed": 1}))
    async def replay_webhooks(request: Request) -> dict[str, Any]:
        """Queue every failed webhook delivery again."""
        async with audited(request, "replay_webhooks"):
            return await _bridge(request).bot.replay_webhooks()

    @admin.get("/diagnose", responses=examples.ok(examples.DIAGNOSE))
    async def diagnose(request: Request) -> dict[str, Any]:
        """The connection doctor, run by the bot from where the engine runs: each layer
        (config, DNS, TCP, proxy, TLS, WebSocket, Noise, account) with its time, and the
        verdict (first failing layer, cause, fixes). ``healthy`` is false when one failed."""
        return await _bridge(request).bot.diagnose()

    @admin.get("/events", responses=examples.sse())
    async def events(request: Request) -> EventSourceResponse:
        """Server-Sent Events: ``state`` on every change (and first, the state now; then the
        QR on offer, if one is), ``qr`` on every rotation,
        ``message`` for each incoming message and ``receipt`` for each step of a sent one."""
        bridge = _bridge(request)
        # Subscribe before the snapshot: a change the bot makes while the snapshot is on its
        # way is then queued behind it instead of falling between the two.
        events = bridge.relay.subscribe()
        try:
            first = await bridge.status()
        except BaseException:
            events.close()
            raise
        live = bridge.relay.live_qr()  # a listener waiting for a code gets the one on offer

        async def stream() -> AsyncIterator[dict[str, str]]:
            try:
                yield {"event": "state", "data": json.dumps(first)}
                if live is not None:
                    yield {"event": "qr", "data": json.dumps(live)}
                async for kind, data in events:
                    if await request.is_disconnected():
                        return
                    yield {"event": kind, "data": json.dumps(data)}
            finally:
                events.close()

        return EventSourceResponse(stream(), ping=15)

    @app.get("/healthz", responses=examples.public({"status": "ok"}))
    async def healthz() -> dict[str, str]:
        """Liveness of the bridge itself; no details, no auth."""
        return {"status": "ok"}

    @app.get(
        "/metrics",
        dependencies=[BearerAuth],
        response_class=Response,
        responses=examples.text("waqr_bridge_auth_failures_total 0.0\n"),
    )
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (Bearer token required)."""
        bridge = _bridge(request)
        # The cache's health as of this scrape, not as of the last status request.
        bridge.metrics.cache_degraded.set(1 if await bridge.cache.health() == "degraded" else 0)
        return Response(bridge.metrics.render(), media_type="text/plain; version=0.0.4")

    # HTTP request counts and latencies per route, from a maintained instrumentation library.
    Instrumentator(registry=bridge.metrics.registry, excluded_handlers=["/metrics"]).instrument(app)
    app.include_router(admin)
    app.include_router(alias)
    return app


def create_app_from_env() -> FastAPI:
    """The app of one worker of ``waqr api --workers N``: settings and logging from the
    environment, as the parent process left it."""
    from waqr.logs import configure_logging
    from waqr.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
