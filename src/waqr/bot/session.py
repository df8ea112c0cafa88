"""One WhatsApp session: the state machine between the HTTP API and the engine.

The session never imports neonize; it drives an :class:`~waqr.engine.protocol.Engine`
made by a factory, one per connection attempt, and maps the engine's typed events to
states and reasons (this module is the one place that mapping lives).

One driver task runs attempts in sequence. Requests from the API (reconnect, relink,
logout, pairing code, QR demand) never touch the engine's lifecycle directly: they leave a
restart request and wake the driver, so concurrent requests coalesce into one engine
restart and credentials are wiped only when no engine holds them open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any

from waqr.backoff import Backoff
from waqr.bot import reasons
from waqr.bot.reasons import Reason
from waqr.bot.states import LINKING, RESTING, State
from waqr.bot.store import SavedQr, SessionStore
from waqr.engine import protocol as p
from waqr.errors import EngineCommandFailed, SessionBusy
from waqr.logs import log_event
from waqr.redact import mask_phone
from waqr.tasks import cancel, spawn

log = logging.getLogger("waqr.session")


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    qr_demand_window: float = 180.0
    qr_max_cycles: int = 3
    # How long whatsmeow may try to get a lost connection back by itself before the
    # session replaces the engine.
    reconnect_grace: float = 30.0
    # How long POST /pair-code waits for an engine to be ready to pair.
    pair_wait: float = 45.0
    # Whether the engine dials through WA_PROXY (changes how dial errors read).
    via_proxy: bool = False


@dataclass(frozen=True, slots=True)
class LiveQr:
    code: str
    issued_at: float
    expires_at: float

    def expires_in(self, now: float) -> float:
        return max(0.0, self.expires_at - now)


@dataclass(frozen=True, slots=True)
class PairingCode:
    code: str
    phone_masked: str
    issued_at: float


@dataclass(frozen=True, slots=True)
class _Restart:
    wipe: bool
    reason: Reason | None
    state: State


class _Outcome(Enum):
    RETRY = auto()  # back off, then a fresh engine
    QR_EXHAUSTED = auto()  # the batch of QR refs ran out unscanned
    FRESH_LINK = auto()  # logged out: wipe and offer a new QR at once
    FAILED = auto()  # needs an operator
    RESTART = auto()  # a request asked for it


# Engine events that end a requested reconnect's "in progress" window.
_SETTLING = (
    p.QrIssued,
    p.Connected,
    p.LoggedOut,
    p.TemporaryBan,
    p.ClientOutdated,
    p.ConnectFailure,
    p.StreamReplaced,
    p.Disconnected,
    p.DialFailed,
)


# GET /qr's status when no QR is live: a QR may still come ("not_ready", "connecting"), or
# the session's own state says why there is none (connected, qr_timeout, failed).
_NO_QR_STATUS = {
    State.STARTING: "not_ready",
    State.DISCONNECTED: "not_ready",
    State.LOGGED_OUT: "not_ready",
    State.QR_READY: "not_ready",  # between an expired code and the next one
    State.PAIRING_CODE: "not_ready",
    State.CONNECTING: "connecting",
}


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


class Session:
    def __init__(
        self,
        name: str,
        store: SessionStore,
        engine_factory: Callable[[], p.Engine],
        policy: SessionPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.store = store
        self.engine_factory = engine_factory
        self.policy = policy
        self.clock = clock
        self.state = State.STARTING
        self.since = clock()
        self.reason: Reason | None = None
        self.account: dict[str, str | None] | None = None
        self.qr: LiveQr | None = None
        self.pairing: PairingCode | None = None
        self.next_retry_at: float | None = None
        self.engine_starts = 0
        self.keepalive_failing = False
        self.has_credentials = False
        self.last_action: dict[str, str | None] | None = None
        self._engine: p.Engine | None = None
        self._restart: _Restart | None = None
        # True from a restart request until the engine it starts reports an outcome (QR,
        # connection, refusal, exit): requests in that window coalesce into it.
        self._restart_in_flight = False
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._backoff = Backoff(policy.backoff_min, policy.backoff_max)
        self._qr_cycles = 0
        self._last_demand: float | None = None
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._driver: asyncio.Task[None] | None = None
        self._grace: asyncio.Task[None] | None = None
        self._op_lock = asyncio.Lock()
        self._unlinking = False  # a relink/logout is unlinking the device at WhatsApp

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self.has_credentials = await asyncio.to_thread(self.store.has_credentials)
        stale = await asyncio.to_thread(self.store.load_qr)
        if stale is not None:
            # The QR belonged to an engine that is gone with the previous process; the
            # server will never accept its ref again, so it is not served (promise 1).
            log_event(log, "discarded QR of the previous run", session=self.name)
            await asyncio.to_thread(self.store.save_qr, None)
        self._driver = spawn(self._drive(), name=f"session-{self.name}")

    async def close(self) -> None:
        engine = self._engine  # the driver forgets it when cancelled
        await cancel(self._driver)
        await cancel(self._grace)
        if engine is not None:
            await engine.stop()
        self._engine = None

    # --- what the API reads -----------------------------------------------------------------
    def current_qr(self) -> LiveQr | None:
        """The QR the engine holds now, if it is still alive."""
        if self.state in LINKING and self.qr is not None and self.qr.expires_at > self.clock():
            return self.qr
        return None

    def status(self) -> dict[str, Any]:
        now = self.clock()
        qr = self.current_qr()
        return {
            "session": self.name,
            "connected": self.state is State.CONNECTED,
            "status": self.state.value,
            "since": iso(self.since),
            "lastDisconnectReason": self.reason.as_json() if self.reason else None,
            "lastDisconnectAt": iso(self.reason.at) if self.reason else None,
            "account": (
                {"jid": self.account.get("jid"), "pushName": self.account.get("pushName")}
                if self.account and self.state is State.CONNECTED
                else None
            ),
            "hasCredentials": self.has_credentials,
            "qr": {"available": qr is not None, "expiresIn": qr.expires_in(now) if qr else None},
            "pairingCode": (
                {"phone": self.pairing.phone_masked, "issuedAt": iso(self.pairing.issued_at)}
                if self.pairing and self.state is State.PAIRING_CODE
                else None
            ),
            "nextRetryAt": iso(self.next_retry_at),
            "keepaliveFailing": self.keepalive_failing,
            "lastAction": self.last_action,
            "engine": {
                "running": self._engine is not None,
                "pid": self._engine.pid if self._engine is not None else None,
                "starts": self.engine_starts,
            },
        }

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Every state change and QR rotation, starting with the current state. A slow
        subscriber loses its oldest events, never blocks the session."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._subscribers.add(queue)
        try:
            yield {"type": "state", "data": self.status()}
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    # --- requests ---------------------------------------------------------------------------
    def note_qr_demand(self) -> None:
        """Someone asked for a QR: keep QR batches coming, and wake a timed-out session."""
        self._last_demand = self.clock()
        if self.state is State.QR_TIMEOUT:
            self._qr_cycles = 0
            self._wake.set()

    def request_reconnect(self, *, reset: bool = False) -> bool:
        """Restart the engine (keeping credentials unless ``reset``). Returns False when the
        request was folded into one already pending."""
        if reset:
            # A relink first unlinks the old device at WhatsApp (best effort), so dead
            # entries do not pile up in the phone's Linked devices (WhatsApp allows four).
            if self._unlinking:
                return False
            self._unlinking = True
            why = reasons.reason("reset_requested")
            spawn(self._unlink_and_restart(why, State.STARTING), name=f"session-{self.name}-reset")
            return True
        # A plain reconnect is an action, not a cause: lastDisconnectReason keeps saying why
        # the session was down (a keepalive nudge must not hide it).
        return self._request_restart(wipe=False, reason=None, state=State.CONNECTING)

    async def logout(self) -> bool:
        """Unlink at WhatsApp when connected, wipe credentials, offer a fresh link. Returns
        whether WhatsApp confirmed the unlink."""
        self._unlinking = True
        return await self._unlink_and_restart(reasons.reason("logout_requested"), State.LOGGED_OUT)

    async def _unlink_and_restart(self, why: Reason, state: State) -> bool:
        async with self._op_lock:
            engine = self._engine
            unlinked = False
            try:
                if self.state is State.CONNECTED and engine is not None:
                    await engine.logout()
                    unlinked = True
            except EngineCommandFailed as exc:
                log_event(
                    log,
                    "unlink at WhatsApp failed; wiping locally",
                    level=logging.WARNING,
                    session=self.name,
                    error=str(exc),
                )
            finally:
                self._unlinking = False
            self._request_restart(wipe=True, reason=why, state=state)
            return unlinked

    async def pair_code(self, phone_digits: str) -> PairingCode:
        """Ask the engine for a pairing code for ``phone_digits`` (E.164 digits, no '+')."""
        async with self._op_lock:
            if self.state is State.CONNECTED:
                raise SessionBusy("the session is already linked; log out first to link another")
            if self.has_credentials and self.state not in LINKING:
                raise SessionBusy(
                    f"the session holds credentials and is {self.state.value}; "
                    "relink with POST /reconnect?reset=true to link another account"
                )
            self._last_demand = self.clock()
            if self.state in RESTING:
                self._qr_cycles = 0
                self._wake.set()
            # whatsmeow accepts PairPhone only while a connect runs, i.e. after its first QR.
            # Stop waiting as soon as the attempt fails: no QR will come from it.
            settled = LINKING | {State.DISCONNECTED, State.FAILED, State.CONNECTED}
            await self._wait_for(lambda: self.state in settled, self.policy.pair_wait)
            if self.state not in LINKING:
                why = f" ({self.reason.message})" if self.reason else ""
                raise SessionBusy(
                    f"cannot pair now: the session is {self.state.value}{why}; try again"
                )
            engine = self._engine
            if engine is None:
                raise SessionBusy("the engine stopped before it could pair; try again")
            code = await engine.pair_phone(phone_digits)
            self.pairing = PairingCode(code, mask_phone(phone_digits), self.clock())
            self._set_state(State.PAIRING_CODE)
            return self.pairing

    # --- internals: state -------------------------------------------------------------------
    def _set_state(self, state: State, reason: Reason | None = None) -> None:
        changed = state is not self.state or reason is not None
        if state is not self.state:
            self.since = self.clock()
        self.state = state
        if reason is not None:
            self.reason = reason
        if state is not State.DISCONNECTED:
            self.next_retry_at = None  # a retry time means something only while backing off
        if not changed:
            return
        log_event(
            log,
            "session state",
            session=self.name,
            state=state.value,
            reason=reason.code if reason is not None else None,
        )
        self._publish({"type": "state", "data": self.status()})
        spawn(self._notify(), name=f"session-{self.name}-notify")

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait_for(self, predicate: Callable[[], bool], seconds: float) -> bool:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(predicate), seconds)
        return predicate()

    def _publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    def _demand_is_recent(self) -> bool:
        # Event subscribers do not count: the bridge listens all the time; a person waiting
        # shows by asking for the QR (GET /qr, the images, a pairing code).
        last = self._last_demand
        return last is not None and self.clock() - last <= self.policy.qr_demand_window

    def _request_restart(self, *, wipe: bool, reason: Reason | None, state: State) -> bool:
        action = "reconnect" if not wipe else (reason.code if reason else "reset")
        self.last_action = {"action": action, "at": iso(self.clock())}
        pending = self._restart
        if pending is not None:
            if wipe and not pending.wipe:  # a relink outranks a plain reconnect
                self._restart = _Restart(wipe=True, reason=reason, state=state)
                self._set_state(state, reason)
            return False
        if self._restart_in_flight and not wipe:
            return False  # the engine a previous request started has not reported yet
        log_event(log, "restart requested", session=self.name, action=action)
        self._restart_in_flight = True
        self._restart = _Restart(wipe=wipe, reason=reason, state=state)
        self._set_state(state, reason)
        engine = self._engine
        if engine is not None:
            spawn(engine.stop(), name=f"session-{self.name}-stop")
        self._wake.set()
        return True

    # --- internals: the driver --------------------------------------------------------------
    async def _drive(self) -> None:
        while True:
            restart, self._restart = self._restart, None
            if restart is not None:
                await self._apply_restart(restart)
            elif self.state in RESTING:
                self._wake.clear()
                await self._wake.wait()
                if self._restart is not None:
                    continue
                self._qr_cycles = 0
                self._set_state(State.CONNECTING)
            self._wake.clear()
            outcome = await self._attempt()
            if self._restart is not None:
                continue
            await self._conclude(outcome)

    async def _apply_restart(self, restart: _Restart) -> None:
        self._backoff.reset()
        self._qr_cycles = 0
        self.pairing = None
        self.qr = None
        if restart.wipe:
            await self._wipe()
        self._set_state(restart.state)

    async def _wipe(self) -> None:
        await asyncio.to_thread(self.store.wipe_credentials)
        await asyncio.to_thread(self.store.save_qr, None)
        self.has_credentials = False
        self.account = None
        log_event(log, "credentials wiped", session=self.name)

    async def _attempt(self) -> _Outcome:
        engine = self.engine_factory()
        self._engine = engine
        self.engine_starts += 1
        self.keepalive_failing = False
        if self.state not in (State.LOGGED_OUT, State.STARTING):
            self._set_state(State.CONNECTING)
        try:
            await engine.start()
            if self._restart is not None:
                spawn(engine.stop(), name=f"session-{self.name}-stop")
            return await self._follow(engine)
        finally:
            await cancel(self._grace)
            self._engine = None
            self.has_credentials = await asyncio.to_thread(self.store.has_credentials)

    async def _follow(self, engine: p.Engine) -> _Outcome:
        outcome: _Outcome | None = None

        stream_error: Reason | None = None

        def finish(
            result: _Outcome, reason: Reason | None = None, state: State | None = None
        ) -> None:
            nonlocal outcome
            if outcome is None:
                outcome = result
                if state is not None:
                    self._set_state(state, reason)
                elif reason is not None:
                    self.reason = reason
                spawn(engine.stop(), name=f"session-{self.name}-stop")

        async for event in engine.events():
            if self._restart is not None and not isinstance(event, p.EngineExited):
                continue  # a request is replacing this engine; its last words do not count
            if isinstance(event, _SETTLING):
                self._restart_in_flight = False
            match event:
                case p.QrIssued(code=code, lifetime=lifetime):
                    now = self.clock()
                    self.qr = LiveQr(code, now, now + lifetime)
                    self._backoff.reset()
                    if self.state is not State.PAIRING_CODE:
                        self._set_state(State.QR_READY)
                    self._publish({"type": "qr", "data": self.qr_payload()})
                    await asyncio.to_thread(self.store.save_qr, SavedQr(code, self.qr.expires_at))
                case p.PairSuccess():
                    self.qr = None
                    self.pairing = None
                    self.has_credentials = True
                    self._set_state(State.CONNECTING)
                    await asyncio.to_thread(self.store.save_qr, None)
                case p.Connected(jid=jid, push_name=push_name):
                    await cancel(self._grace)
                    self.qr = None
                    self.pairing = None
                    self.account = {"jid": jid, "pushName": push_name}
                    self.has_credentials = True
                    self._backoff.reset()
                    self._qr_cycles = 0
                    self._set_state(State.CONNECTED)
                case p.LoggedOut(code=status):
                    why = reasons.logged_out_reason(status)
                    if why.code == "logged_out":
                        finish(_Outcome.FRESH_LINK, why, State.LOGGED_OUT)
                    else:
                        finish(_Outcome.FAILED, why, State.FAILED)
                case p.TemporaryBan(ban_code=ban_code, expires_in=expires_in):
                    why = reasons.temporary_ban_reason(ban_code, expires_in)
                    finish(_Outcome.FAILED, why, State.FAILED)
                case p.ClientOutdated():
                    finish(_Outcome.FAILED, reasons.reason("client_outdated"), State.FAILED)
                case p.ConnectFailure(code=status, message=message):
                    why = reasons.connect_failure_reason(status, message)
                    finish(_Outcome.FAILED, why, State.FAILED)
                case p.StreamReplaced():
                    finish(_Outcome.FAILED, reasons.reason("stream_replaced"), State.FAILED)
                case p.ServerUnavailable(code=status):
                    stream_error = reasons.reason("server_unavailable", detail=f"status {status}")
                    self._set_state(State.DISCONNECTED, stream_error)
                case p.StreamError(code=code):
                    stream_error = reasons.reason("stream_error", detail=f"code {code}")
                case p.KeepAliveTimeout():
                    self.keepalive_failing = True
                case p.KeepAliveRestored():
                    self.keepalive_failing = False
                case p.Disconnected():
                    if self.state in LINKING:
                        # whatsmeow disconnects when its batch of QR refs runs out
                        # (qrchan.go) and asks for no more until it connects again.
                        finish(_Outcome.QR_EXHAUSTED)
                    else:
                        why = stream_error or reasons.reason("connection_lost")
                        self._on_connection_lost(engine, why)
                    stream_error = None
                case p.DialFailed(error=error):
                    why = reasons.dial_failure_reason(error, via_proxy=self.policy.via_proxy)
                    finish(_Outcome.RETRY, why, State.DISCONNECTED)
                case p.EngineExited(expected=expected, reason=code, detail=detail):
                    if self._restart is not None:
                        return _Outcome.RESTART
                    self._restart_in_flight = False
                    if not expected:
                        why = reasons.reason(code, detail=detail)
                        if code == "engine_unavailable":
                            finish(_Outcome.FAILED, why, State.FAILED)
                        else:
                            finish(_Outcome.RETRY, why, State.DISCONNECTED)
                    log_event(log, "engine gone", session=self.name, reason=code, detail=detail)
        return outcome if outcome is not None else _Outcome.RETRY

    def _on_connection_lost(self, engine: p.Engine, why: Reason) -> None:
        self._set_state(State.DISCONNECTED, why)
        # whatsmeow reconnects by itself after a drop; give it a grace period, then
        # replace the engine.
        if self._grace is None or self._grace.done():
            self._grace = spawn(self._grace_expired(engine), name=f"session-{self.name}-grace")

    async def _grace_expired(self, engine: p.Engine) -> None:
        await asyncio.sleep(self.policy.reconnect_grace)
        if self._engine is engine and self.state is not State.CONNECTED:
            log_event(log, "engine did not reconnect in time; replacing it", session=self.name)
            await engine.stop()

    async def _conclude(self, outcome: _Outcome) -> None:
        match outcome:
            case _Outcome.FRESH_LINK:
                await self._wipe()
            case _Outcome.QR_EXHAUSTED:
                self._qr_cycles += 1
                self.qr = None
                if self._demand_is_recent() and self._qr_cycles < self.policy.qr_max_cycles:
                    log_event(
                        log,
                        "QR batch ran out; someone is waiting, fetching a new one",
                        session=self.name,
                        cycle=self._qr_cycles,
                    )
                    self._set_state(State.CONNECTING)
                else:
                    self._set_state(State.QR_TIMEOUT, reasons.reason("qr_timeout"))
            case _Outcome.FAILED:
                self.qr = None
                if self.reason and self.reason.code in ("main_device_gone", "unknown_logout"):
                    await self._wipe()  # whatsmeow already deleted the device from its store
                if self.state is not State.FAILED:
                    self._set_state(State.FAILED)
            case _Outcome.RETRY | _Outcome.RESTART:
                self.qr = None
                delay = self._backoff.next_delay()
                self.next_retry_at = self.clock() + delay
                self._set_state(State.DISCONNECTED, self.reason)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self.next_retry_at = None

    def qr_payload(self) -> dict[str, Any]:
        """``GET /qr``'s body: the live QR with its true remaining lifetime."""
        qr = self.current_qr()
        if qr is not None:
            state = "pairing_code" if self.state is State.PAIRING_CODE else "qr_ready"
            expires_in = round(qr.expires_in(self.clock()), 1)
            return {"status": state, "qr": qr.code, "expires_in": expires_in}
        return {
            "status": _NO_QR_STATUS.get(self.state, self.state.value),
            "qr": None,
            "expires_in": None,
        }
