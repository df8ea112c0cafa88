"""The bot's HTTP API (internal only; the bridge is the public face).

Paths are kept from the original Node/Baileys deployment so existing clients keep working:
``/health``, ``/status``, ``/qr``, ``/reconnect``. New: ``/qr.png``, ``/qr.svg``,
``/logout``, ``/pair-code``, ``/events``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
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
from waqr.bot import responses
from waqr.bot.auth import BotTokenAuth
from waqr.bot.messenger import Messenger
from waqr.bot.metrics import BotMetrics
from waqr.bot.registry import SessionRegistry
from waqr.bot.session import Session
from waqr.doctor import diagnose as run_diagnosis
from waqr.errors import SendRefused
from waqr.http_errors import error_body, install_error_handlers
from waqr.qr_render import qr_image_response
from waqr.tasks import cancel, spawn


async def default_session(request: Request) -> Session:
    # Async so that FastAPI does not hop to its thread pool for a dictionary lookup.
    registry: SessionRegistry = request.app.state.registry
    return registry.get()


SessionDep = Annotated[Session, Depends(default_session)]


async def default_messenger(request: Request) -> Messenger:
    registry: SessionRegistry = request.app.state.registry
    return registry.messenger()


MessengerDep = Annotated[Messenger, Depends(default_messenger)]


def refusal(exc: SendRefused) -> HTTPException:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    extra = {**exc.extra, "retryAfter": exc.retry_after} if exc.retry_after else exc.extra
    body = error_body(exc.code, str(exc), **extra)
    return HTTPException(exc.status, detail=body, headers=headers)


def create_app(registry: SessionRegistry, *, manage_lifecycle: bool = True) -> FastAPI:
    """The bot's app. With ``manage_lifecycle`` it starts and closes the registry's sessions."""

    metrics = BotMetrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await registry.start()
        watchers = [
            spawn(metrics.watch(name, session), name=f"metrics-{name}")
            for name, session in registry.sessions.items()
        ]
        try:
            yield
        finally:
            for watcher in watchers:
                await cancel(watcher)
            if manage_lifecycle:
                await registry.close()

    # Swagger UI and ReDoc from files shipped in fastapi-offline, not a CDN: /docs works on
    # a server without internet access.
    app = FastAPIOffline(
        title="waqr bot",
        version=__version__,
        description="Internal WhatsApp linking service. Never expose it; use the bridge.",
        lifespan=lifespan,
    )
    app.state.registry = registry
    install_error_handlers(app)
    # HTTP request counts and latencies per route, from a maintained instrumentation library.
    Instrumentator(registry=metrics.registry, excluded_handlers=["/metrics"]).instrument(app)
    if registry.settings.bot_token:
        app.add_middleware(BotTokenAuth, tokens=registry.settings.bot_token.split(","))

    @app.get(
        "/health",
        responses={503: responses.HEALTH_503},
    )
    async def health() -> JSONResponse:
        """Liveness: 200 while every session's actor runs and meets its deadlines; 503 with
        the cause otherwise, so an orchestrator restarts the process."""
        for name, session in registry.sessions.items():
            cause = session.health()
            if cause is not None:
                body = error_body("session_unhealthy", f"session {name}: {cause}")
                return JSONResponse({"status": "unhealthy", **body}, status_code=503)
        return JSONResponse({"status": "ok", "instance": registry.settings.instance_id})

    @app.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text"},
            **responses.errors(),
        },
    )
    async def metrics_text() -> Response:
        """Session state, engine starts and exits, QR refs issued, time to connect, time in
        each state, last connected time, and HTTP request metrics."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/status", responses=responses.errors())
    async def status(session: SessionDep) -> dict[str, Any]:
        return session.status()

    @app.get("/qr", responses=responses.errors(422))
    async def qr(
        session: SessionDep,
        peek: Annotated[
            bool, Query(description="Read without signalling that a person waits to scan.")
        ] = False,
    ) -> dict[str, Any]:
        """The QR the engine holds now, with its true remaining lifetime in seconds.

        A read (unless ``peek``) tells the bot someone waits to scan: it keeps fetching
        fresh QR batches for a while, and wakes a session resting in ``qr_timeout``."""
        if not peek:
            session.note_qr_demand()
        return session.qr_payload()

    @app.get("/qr.png", response_class=Response, responses=responses.image("image/png"))
    async def qr_png(session: SessionDep) -> Response:
        """The current QR as a PNG; JSON 404 when there is none, 409 when linked."""
        session.note_qr_demand()
        return qr_image_response(session.qr_payload(), "png")

    @app.get("/qr.svg", response_class=Response, responses=responses.image("image/svg+xml"))
    async def qr_svg(session: SessionDep) -> Response:
        """The current QR as an SVG; JSON 404 when there is none, 409 when linked."""
        session.note_qr_demand()
        return qr_image_response(session.qr_payload(), "svg")

    @app.post("/reconnect", status_code=202, responses=responses.errors(422, 503))
    async def reconnect(
        session: SessionDep,
        reset: Annotated[
            bool, Query(description="Wipe credentials first and start a fresh link.")
        ] = False,
    ) -> dict[str, Any]:
        """Reconnect in the background, keeping the credentials (unless ``reset=true``).

        Overlapping calls coalesce into one engine restart. A call that arrives while a
        logout or pairing is running is carried out after it (``queuedBehind`` says which)."""
        result = await session.reconnect(reset=reset)
        return {
            "accepted": True,
            "coalesced": not result.started,
            "reset": reset,
            "status": session.state.value,
            "queuedBehind": result.queued_behind,
        }

    @app.post("/logout", responses=responses.errors(503))
    async def logout(session: SessionDep) -> dict[str, Any]:
        """Unlink the device at WhatsApp (when connected), wipe credentials, offer a new link."""
        result = await session.logout()
        return {
            "loggedOut": True,
            "unlinkedAtWhatsApp": result.unlinked,
            "status": session.state.value,
            "queuedBehind": result.queued_behind,
        }

    @app.post("/pair-code", responses=responses.errors(400, 409, 422, 503))
    async def pair_code(session: SessionDep, body: PairCodeRequest) -> dict[str, Any]:
        """Link by phone number: returns the 8-character code to type on the phone."""
        pairing = await session.pair_code(body.phone)
        return {"code": pairing.code, "phone": pairing.phone_masked, "status": "pairing_code"}

    @app.get("/diagnose", responses=responses.errors())
    async def diagnose(session: SessionDep) -> dict[str, Any]:
        """The connection doctor, run from here (where the engine runs) with the bot's own
        settings: every layer timed, and the verdict naming the first that failed."""
        report = await run_diagnosis(registry.settings, bot_status=session.status())
        return report.as_json()

    @app.post("/messages", status_code=202, responses=responses.errors(400, 409, 422, 429))
    async def send_message(
        messenger: MessengerDep,
        body: SendMessageRequest,
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Queue a text for sending through the linked account (durably: an accepted message
        is sent even if the bot restarts first). Follow it with ``GET /messages/{id}`` or the
        ``receipt`` events."""
        try:
            outgoing, created = await messenger.submit(
                body.to, body.text, body.reply_to, idempotency_key
            )
        except SendRefused as exc:
            raise refusal(exc) from None
        return {**outgoing.as_json(), "duplicate": not created}

    @app.get("/messages/{message_id}", responses=responses.errors(404, 422))
    async def get_message(messenger: MessengerDep, message_id: str) -> dict[str, Any]:
        """A sent message's status and its latest receipt (sent, delivered, read)."""
        outgoing = await messenger.get(message_id)
        if outgoing is None:
            raise HTTPException(404, detail=error_body("no_message", "no such message"))
        return outgoing.as_json()

    @app.get("/messages", responses=responses.errors(422))
    async def list_messages(
        messenger: MessengerDep,
        direction: Annotated[str, Query(pattern="^in$", description="Only 'in' for now.")] = "in",
        after: InboxAfter = 0,
        limit: InboxLimit = 100,
    ) -> dict[str, Any]:
        """Incoming messages in the order they arrived, after the ``seq`` given."""
        return {"messages": await messenger.inbox(after, limit)}

    @app.get("/webhooks/failed", responses=responses.errors())
    async def failed_webhooks(messenger: MessengerDep) -> dict[str, Any]:
        """Webhook deliveries given up after WAQR_WEBHOOK_RETRY_PERIOD (oldest 100)."""
        return {"failed": await messenger.failed_webhooks()}

    @app.post("/webhooks/failed/replay", responses=responses.errors())
    async def replay_webhooks(messenger: MessengerDep) -> dict[str, Any]:
        """Queue every failed webhook delivery again."""
        return {"replayed": await messenger.replay_webhooks()}

    @app.get("/events", responses=responses.sse())
    async def events(request: Request, session: SessionDep) -> EventSourceResponse:
        """Server-Sent Events: ``state`` on every state change, ``qr`` on every rotation,
        ``message`` for every incoming message (once stored), ``receipt`` when a sent
        message is sent, delivered or read."""

        async def stream() -> AsyncIterator[dict[str, str]]:
            async for event in session.subscribe():
                if await request.is_disconnected():
                    return
                yield {"event": event["type"], "data": json.dumps(event["data"])}

        return EventSourceResponse(stream(), ping=15)

    return app
