"""One WhatsApp session: an actor that owns the session's state and its clock.

One task (the actor) owns everything here and reads one queue (``inbox.py``): the API's
commands (reconnect, relink, logout, pairing code, QR demand, close), the events of the
engine it runs, and the results of engine calls it started. Nothing else writes the state,
so there is no lock and no flag to race on; the HTTP handlers put a command in and await
its reply.

Liveness is the session's, not the engine's: whatsmeow goes silent in ordinary situations
(a QR batch running out, a socket closed right after 515, a hung call), so every waiting
state has a deadline (``policy.py``) and the queue is read with a timeout equal to the
nearest one; a deadline passing is just another input. Engine calls run as tasks whose
results come back through the queue, so a hung call never blocks the actor, and every step
is guarded: an exception becomes the reason ``internal_error`` and a retry, never a dead loop.

The session never imports neonize; it drives an :class:`~waqr.engine.protocol.Engine` made
by a factory, one per connection attempt, and this module is the one place where engine
events become states and reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from waqr.backoff import Backoff
from waqr.bot import inbox as i
from waqr.bot import reasons
from waqr.bot.policy import SessionPolicy
from waqr.bot.reasons import Reason
from waqr.bot.states import LINKING, RESTING, State, no_qr_answer
from waqr.bot.store import SessionStore
from waqr.engine import protocol as p
from waqr.engine.version import EngineVersion
from waqr.errors import EngineUnresponsive, SessionBusy, SessionUnavailable
from waqr.logs import log_event
from waqr.redact import mask_phone
from waqr.tasks import cancel, spawn

log = logging.getLogger("waqr.session")

__all__ = ["LiveQr", "PairingCode", "Session"]


@dataclass(frozen=True, slots=True)
class LiveQr:
    code: str
    expires_at: float  # on the session's clock

    def expires_in(self, now: float) -> float:
        return max(0.0, self.expires_at - now)


@dataclass(frozen=True, slots=True)
class PairingCode:
    code: str
    phone_masked: str
    issued_at: float  # unix seconds


# Refusals that need an operator: the session rests in `failed` until asked again.
_REFUSALS = (p.TemporaryBan, p.ClientOutdated, p.ConnectFailure)
# Events that do not settle a requested restart (they are not an outcome of the attempt).
Traffic = p.MessageReceived | p.ReceiptReceived
_NOT_SETTLING = (p.PairSuccess, p.StreamError, p.KeepAliveTimeout, p.KeepAliveRestored)


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    engine: p.Engine
    command: i.Command | None
    task: asyncio.Task[None]
    token: object  # tells this call's result from a cancelled predecessor's
    deadline: float  # the engine bounds its own calls; this bounds an engine that does not


@dataclass(frozen=True, slots=True)
class _Unlink:
    command: i.Reconnect | i.Logout
    after: tuple[State, Reason]  # the state and reason once credentials are wiped
    until: float  # how long to wait for a connected engine to unlink with


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
        clock: Callable[[], float] = time.monotonic,
        engine_version: EngineVersion | None = None,
    ) -> None:
        self.name = name
        self.engine_version = engine_version  # what the engine announces to WhatsApp
        self.store = store
        self.engine_factory = engine_factory
        self.policy = policy
        self.clock = clock  # deadlines; wall times are derived from it (see _wall)
        # --- what the API reads (written only by the actor) ---------------------------------
        self.state = State.STARTING
        self.since = clock()
        self.reason: Reason | None = None
        self.account: dict[str, str | None] | None = None
        self.qr: LiveQr | None = None
        self.pairing: PairingCode | None = None
        self.engine_starts = 0
        self.keepalive_failing = False
        self.last_heard: float | None = None  # unix seconds: WhatsApp last answered (see status)
        self.has_credentials = False
        self.last_action: dict[str, str | None] | None = None
        # --- the actor's own ----------------------------------------------------------------
        self._inbox: asyncio.Queue[i.Input] = asyncio.Queue()
        self._actor: asyncio.Task[None] | None = None
        self._engine: p.Engine | None = None
        self._heard_from_engine = False  # the current engine reported something
        self._linked_in_attempt = False  # PairSuccess seen from the current engine
        self._retiring: dict[p.Engine, float] = {}  # engines being stopped -> give-up time
        self._start_at: float | None = None  # when to start the next engine (None: rest)
        self._wipe_first = False  # wipe credentials before the next engine starts
        self._deadline: float | None = None  # the current state's deadline
        self._next_ping: float | None = None
        self._restart_in_flight: str | None = None  # "reconnect"/"wipe" until it settles
        self._stream_error: Reason | None = None
        self._keepalive: tuple[float, int] | None = None  # first miss (wall), misses so far
        self._replaced: deque[float] = deque()  # when 440 replaced came (session clock)
        self._linked_at: float | None = None  # unix seconds, when linked in this run
        self._call: _Call | None = None  # a pair or unlink running; commands wait behind it
        self._probe: _Call | None = None  # an engine ping running
        self._deferred: deque[i.Request] = deque()
        self._waiting_pair: tuple[i.PairCode, float] | None = None
        self._unlink: _Unlink | None = None  # a logout/relink waiting to unlink at WhatsApp
        self._closing: i.Close | None = None
        self._backoff = Backoff(policy.backoff_min, policy.backoff_max)
        self._qr_cycles = 0
        self._last_demand: float | None = None
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._published: dict[str, Any] | None = None  # the last status subscribers were sent
        # Messages and receipts bypass the actor (they change no state): the pump hands them
        # to this sink (``messenger.py``) and waits, so a message is stored before the next.
        self.traffic: Callable[[p.Engine, Traffic], Awaitable[None]] | None = None

    # === lifecycle ==========================================================================
    async def start(self) -> None:
        self.has_credentials = await asyncio.to_thread(self.store.has_credentials)
        await asyncio.to_thread(self.store.remove_leftovers)
        self._start_at = self.clock()
        self._actor = spawn(self._run(), name=f"session-{self.name}")

    async def close(self) -> None:
        """Stop the engine (bounded) and end the actor."""
        actor = self._actor
        if actor is None or actor.done():
            return
        command = i.Close()
        self._inbox.put_nowait(command)
        bound = self.policy.stop_bound + 5
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(command.reply), bound)
        await cancel(actor)

    def health(self) -> str | None:
        """None when the session is sound; else why the process should be restarted."""
        actor = self._actor
        if actor is not None and actor.done() and self._closing is None:
            if actor.cancelled():
                return "the session actor was cancelled"
            return f"the session actor stopped: {actor.exception()!r}"
        deadline = self._nearest_deadline()
        if deadline is not None and self.clock() > deadline + self.policy.health_margin:
            late = self.clock() - deadline
            return f"the session is {late:.0f} s past a deadline in state {self.state.value}"
        return None

    # === what the API reads =================================================================
    def current_qr(self) -> LiveQr | None:
        """The QR the engine holds now, if it is still alive."""
        if self.state in LINKING and self.qr is not None and self.qr.expires_at > self.clock():
            return self.qr
        return None

    def _wall(self, at: float) -> float:
        """A time on the session's clock as unix seconds."""
        return time.time() - (self.clock() - at)

    def _retry_at(self) -> float | None:
        """When the session will act by itself while disconnected: a scheduled engine start,
        or the end of the running engine's reconnect grace."""
        if self.state is not State.DISCONNECTED:
            return None
        if self._engine is None:
            return self._start_at
        return self._deadline

    def status(self) -> dict[str, Any]:
        now = self.clock()
        qr = self.current_qr()
        retry_at = self._retry_at()
        return {
            "session": self.name,
            "connected": self.state is State.CONNECTED,
            "status": self.state.value,
            "since": iso(self._wall(self.since)),
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
            "retrying": retry_at is not None,
            "nextRetryAt": iso(self._wall(retry_at)) if retry_at is not None else None,
            "deadlineAt": iso(self._wall(self._deadline)) if self._deadline is not None else None,
            "keepaliveFailing": self.keepalive_failing,
            "lastFrameAt": iso(self.last_heard),
            "lastAction": self.last_action,
            "engine": {
                "running": self._engine is not None,
                "pid": self._engine.pid if self._engine is not None else None,
                "starts": self.engine_starts,
                "version": self.engine_version.as_json() if self.engine_version else None,
            },
        }

    def qr_payload(self) -> dict[str, Any]:
        """``GET /qr``'s body: the live QR with its true remaining lifetime."""
        qr = self.current_qr()
        if qr is not None:
            state = "pairing_code" if self.state is State.PAIRING_CODE else "qr_ready"
            expires_in = round(qr.expires_in(self.clock()), 1)
            return {"status": state, "qr": qr.code, "expires_in": expires_in}
        return no_qr_answer(self.state.value)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Every state change and QR rotation, starting with the current state. A slow
        subscriber loses its oldest events, never blocks the session."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._subscribers.add(queue)
        try:
            # The snapshot is taken after the queue is registered: nothing falls in between.
            yield {"type": "state", "data": self.status()}
            if self.current_qr() is not None:
                yield {"type": "qr", "data": self.qr_payload()}
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    def attach_diagnosis(self, code: str, diagnosis: dict[str, Any]) -> None:
        """The connection doctor's verdict on a failure to connect (``bot/diagnosis.py``):
        kept in the current reason while that still says the engine could not connect."""
        if self.reason is None or self.reason.code != code:
            return
        self.reason = dataclasses.replace(self.reason, diagnosis=diagnosis)
        self._publish({"type": "state", "data": self.status()})

    # === requests (the API's side of the queue) ============================================
    def note_qr_demand(self) -> None:
        """Someone asked for a QR: keep QR batches coming, and wake a timed-out session."""
        self._inbox.put_nowait(i.Demand())

    def check_deadlines(self) -> None:
        """Look at the clock again now (for a clock that jumps, as tests' does)."""
        self._inbox.put_nowait(i.Tick())

    async def reconnect(self, *, reset: bool = False) -> i.ReconnectResult:
        """Restart the engine, keeping credentials unless ``reset`` (relink: unlink the old
        device at WhatsApp, best effort, then wipe). Answers as soon as the restart is
        under way; ``started`` is False when it was folded into one already running."""
        result: i.ReconnectResult = await self._ask(i.Reconnect(reset=reset))
        return result

    async def logout(self) -> i.LogoutResult:
        """Unlink at WhatsApp when connected, wipe credentials, offer a fresh link."""
        result: i.LogoutResult = await self._ask(i.Logout())
        return result

    async def pair_code(self, phone_digits: str) -> PairingCode:
        """A pairing code for ``phone_digits`` (E.164 digits, no '+')."""
        result: PairingCode = await self._ask(i.PairCode(phone_digits=phone_digits))
        return result

    async def _ask(self, command: i.Request) -> Any:
        actor = self._actor
        if actor is None or actor.done():
            raise SessionUnavailable("the session is not running")
        self._inbox.put_nowait(command)
        # The actor answers every command within its own bounds; this only guards against an
        # actor that died with the command in its queue.
        # The longest legitimate chain: a pairing code queued behind a logout that waited for
        # a reconnecting engine.
        policy = self.policy
        bound = policy.unlink_wait + policy.pair_wait + 2 * policy.command_bound + 10
        done, _ = await asyncio.wait(
            {command.reply, actor}, timeout=bound, return_when="FIRST_COMPLETED"
        )
        if command.reply in done:
            return command.reply.result()
        command.reply.cancel()
        raise SessionUnavailable("the session did not answer; see /health")

    # === the actor ==========================================================================
    async def _run(self) -> None:
        await self._step(self._advance)
        while self._closing is None or self._engine is not None or self._retiring:
            deadline = self._nearest_deadline()
            try:
                if not self._inbox.empty() or deadline is None:
                    # What already arrived comes first: wait_for(get(), 0) would let a deadline
                    # that passed while the actor was busy beat an event that beat it.
                    item: i.Input = await self._inbox.get()
                else:
                    timeout = max(0.0, deadline - self.clock())
                    item = await asyncio.wait_for(self._inbox.get(), timeout)
            except TimeoutError:
                item = i.Tick()
            await self._step(functools.partial(self._handle, item), item)
            await self._step(self._advance)
            self._publish_if_changed()
        if self._closing is not None:
            self._closing.answer(None)

    async def _step(self, work: Callable[[], Awaitable[None]], item: i.Input | None = None) -> None:
        try:
            await work()
        except Exception as exc:
            log.exception("session step failed", extra={"session": self.name})
            if isinstance(item, i.Command):
                item.refuse(SessionUnavailable(f"internal error: {type(exc).__name__}"))
            try:
                self._internal_error(exc)
            except Exception:
                log.exception("session recovery failed", extra={"session": self.name})

    def _internal_error(self, exc: Exception) -> None:
        why = reasons.reason("internal_error", detail=f"{type(exc).__name__}: {exc}")
        self._cancel_call("internal error")
        if self._engine is not None:
            self._retire(self._engine)
        self._schedule_retry(why)

    def _nearest_deadline(self) -> float | None:
        times = [*self._retiring.values()]
        if self._deadline is not None:
            times.append(self._deadline)
        if self._next_ping is not None and self._probe is None and self._call is None:
            times.append(self._next_ping)
        if self._waiting_pair is not None:
            times.append(self._waiting_pair[1])
        times += [call.deadline for call in (self._call, self._probe) if call is not None]
        if self._unlink is not None and self._call is None:
            times.append(self._unlink.until)
        if self._engine is None and not self._retiring and self._start_at is not None:
            times.append(self._start_at)
        return min(times) if times else None

    async def _handle(self, item: i.Input) -> None:
        match item:
            case i.FromEngine(engine=engine, event=event):
                if engine is self._engine:
                    await self._on_event(engine, event)
                elif isinstance(event, p.EngineExited):
                    self._retiring.pop(engine, None)
            case i.CallDone():
                await self._on_call_done(item)
            case i.Demand():
                self._last_demand = self.clock()
                if self.state is State.QR_TIMEOUT and self._closing is None:
                    self._qr_cycles = 0
                    self._start_at = self.clock()
            case i.Tick():
                pass
            case i.Close():
                self._closing = item
                self._cancel_call("the service is stopping")
                self._refuse_pending(SessionUnavailable("the service is stopping"))
                self._start_at = None
                if self._engine is not None:
                    self._retire(self._engine)
            case i.Command() if item.reply.done():
                pass  # its caller gave up on it: do not act on an answer nobody reads
            case i.Command() if self._closing is not None:
                item.refuse(SessionUnavailable("the service is stopping"))
            case i.Command() if (busy := self._busy_with()) is not None:
                item.queued_behind = busy
                self._deferred.append(item)
            case i.Reconnect(reset=False):
                self._on_reconnect(item)
            case i.Reconnect(reset=True) | i.Logout():
                await self._on_unlink_request(item)
            case i.PairCode():
                self._on_pair_code(item)

    def _busy_with(self) -> str | None:
        """The running logout or pairing that later requests wait behind, if any."""
        if self._unlink is not None:
            return "logout"
        return self._call.name if self._call is not None else None

    async def _advance(self) -> None:
        """Act on whatever the clock says is due."""
        now = self.clock()
        for engine, give_up in list(self._retiring.items()):
            if now >= give_up:
                log_event(
                    log,
                    "engine did not stop in time; forgetting it",
                    level=logging.ERROR,
                    session=self.name,
                )
                del self._retiring[engine]
        if self._waiting_pair is not None and now >= self._waiting_pair[1]:
            command, _ = self._waiting_pair
            self._waiting_pair = None
            command.refuse(SessionBusy(self._cannot_pair_now("no engine was ready to pair")))
        await self._overdue_calls(now)
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            self._deadline_passed()
        if (
            self._engine is not None
            and self._next_ping is not None
            and now >= self._next_ping
            and self._probe is None
            and self._call is None
        ):
            self._probe = self._start_ping(self._engine)
        if (
            self._closing is None
            and self._engine is None
            and not self._retiring
            and self._start_at is not None
            and now >= self._start_at
        ):
            await self._start_engine()
        self._try_unlink()
        while self._deferred and self._busy_with() is None:
            deferred = self._deferred.popleft()
            await self._step(functools.partial(self._handle, deferred), deferred)

    # === engine lifecycle ===================================================================
    async def _start_engine(self) -> None:
        if self._wipe_first:
            await self._wipe()
        self._start_at = None  # only now: a wipe that hangs leaves this deadline overrun
        self.qr = None
        self._heard_from_engine = False
        self._linked_in_attempt = False
        self._stream_error = None
        self.keepalive_failing = False
        self._keepalive = None
        engine = self.engine_factory()
        self._engine = engine
        self.engine_starts += 1
        self._next_ping = self.clock() + self.policy.ping_interval
        state = self.state if self.state in (State.LOGGED_OUT, State.STARTING) else None
        self._set_state(state or State.CONNECTING)
        self._deadline = self.clock() + self.policy.dial_timeout
        spawn(self._pump(engine), name=f"session-{self.name}-engine-{self.engine_starts}")

    async def _pump(self, engine: p.Engine) -> None:
        """Start ``engine`` and forward its events; whatever happens, the actor hears of its
        end exactly as an EngineExited."""
        ended = False
        try:
            await engine.start()
            if engine is not self._engine:
                # Retired while it was starting: its stop() came before it had anything to
                # stop, so stop it again now that it runs (never two engines on one store).
                await asyncio.wait_for(engine.stop(), self.policy.stop_bound)
            async for event in engine.events():
                if isinstance(event, p.MessageReceived | p.ReceiptReceived):
                    if self.traffic is not None:
                        await self.traffic(engine, event)
                    continue
                self._inbox.put_nowait(i.FromEngine(engine, event))
                ended = isinstance(event, p.EngineExited)
                if ended:
                    return
        except Exception as exc:
            log_event(
                log,
                "engine failed",
                level=logging.WARNING,
                session=self.name,
                error=f"{type(exc).__name__}: {exc}",
            )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(engine.stop(), self.policy.stop_bound)
            gone = p.EngineExited(
                expected=False, reason="engine_start_failed", detail=f"{type(exc).__name__}: {exc}"
            )
            self._inbox.put_nowait(i.FromEngine(engine, gone))
            ended = True
        finally:
            if not ended:  # cancelled, or the stream ended without a last word
                gone = p.EngineExited(
                    expected=False, reason="engine_crashed", detail="no exit event"
                )
                self._inbox.put_nowait(i.FromEngine(engine, gone))

    def _retire(self, engine: p.Engine) -> None:
        """Stop ``engine`` in the background; the next one starts once it is gone."""
        if engine is self._engine:
            self._forget_current()
        if engine in self._retiring:
            return
        self._retiring[engine] = self.clock() + self.policy.stop_bound
        spawn(engine.stop(), name=f"session-{self.name}-stop")

    def _forget_current(self) -> None:
        """No engine runs now: nothing of the old one's to wait for or to ping."""
        self._engine = None
        self._deadline = None
        self._next_ping = None

    def _replace_engine(self, engine: p.Engine, why: Reason | None) -> None:
        """Stop ``engine`` and start a fresh one (same credentials) after the backoff."""
        self._retire(engine)
        self._schedule_retry(why)

    async def _wipe(self) -> None:
        await asyncio.to_thread(self.store.wipe_credentials)
        self._wipe_first = False  # only once it worked: a failed wipe is retried, never skipped
        self.has_credentials = False
        self.account = None
        self._linked_at = None
        log_event(log, "credentials wiped", session=self.name)

    def _schedule_retry(self, why: Reason | None) -> None:
        self._restart_in_flight = None  # whatever restart was under way has failed
        delay = self._backoff.next_delay()
        self._start_at = self.clock() + delay
        self.qr = None
        self._set_state(State.DISCONNECTED, why)
        self._refuse_waiting_pair()

    def _rest(self, state: State, why: Reason | None) -> None:
        self._restart_in_flight = None
        self._start_at = None
        self.qr = None
        self._set_state(state, why)
        self._refuse_waiting_pair()

    # === engine events ======================================================================
    async def _on_event(self, engine: p.Engine, event: p.EngineEvent) -> None:
        self._heard_from_engine = True
        if not isinstance(event, _NOT_SETTLING):
            self._restart_in_flight = None
        match event:
            case p.QrIssued():
                self._on_qr(engine, event)
            case p.PairSuccess():
                self.qr = None
                self.pairing = None
                self.has_credentials = True
                self._linked_in_attempt = True
                self._linked_at = time.time()
                self._set_state(State.CONNECTING)
                self._deadline = self.clock() + self.policy.login_timeout
            case p.Connected(jid=jid, push_name=push_name):
                self.qr = None
                self.pairing = None
                self.account = {"jid": jid, "pushName": push_name}
                self.has_credentials = True
                self._backoff.reset()
                self._qr_cycles = 0
                self._deadline = None
                self._linked_in_attempt = False
                self.keepalive_failing = False
                self._keepalive = None
                self.last_heard = time.time()
                self._set_state(State.CONNECTED)
                self._refuse_waiting_pair()
            case p.LoggedOut(code=status, node=node):
                linked_for = time.time() - self._linked_at if self._linked_at else None
                why = reasons.logged_out_reason(
                    status, linked_for=linked_for, via_proxy=self.policy.via_proxy, node=node
                )
                self._retire(engine)
                self._wipe_first = True  # whatsmeow deleted the device from its store
                if why.code == "logged_out":
                    self._start_at = self.clock()  # offer a fresh link at once
                    self._set_state(State.LOGGED_OUT, why)
                else:
                    self._rest(State.FAILED, why)
            case p.TemporaryBan(ban_code=ban_code, expires_in=expires_in):
                self._refuse_login(engine, reasons.temporary_ban_reason(ban_code, expires_in))
            case p.ClientOutdated():
                self._refuse_login(engine, reasons.client_outdated_reason(self._announced()))
            case p.ConnectFailure(code=status, message=message):
                why = reasons.connect_failure_reason(
                    status, message, engine_version=self._announced()
                )
                self._refuse_login(engine, why)
            case p.StreamReplaced(node=node):
                self._on_replaced(engine, node)
            case p.ServerUnavailable(code=status):
                # whatsmeow would retry by itself at once, in bursts; the session's own
                # backoff spaces the logins instead.
                why = reasons.reason("server_unavailable", detail=f"status {status}")
                self._replace_engine(engine, why)
            case p.StreamError(code=code, node=node):
                detail = f"code {code}" + (f"; node: {node}" if node else "")
                self._stream_error = reasons.reason("stream_error", detail=detail)
            case p.KeepAliveTimeout(error_count=misses, last_success=last_success):
                self._on_keepalive_missed(misses, last_success)
            case p.KeepAliveRestored():
                self.keepalive_failing = False
                self._keepalive = None
                self.last_heard = time.time()
                if self.state is State.CONNECTED:
                    self._deadline = None
            case p.Disconnected():
                self._on_disconnected(engine)
            case p.DialFailed(error=error):
                why = reasons.dial_failure_reason(error, via_proxy=self.policy.via_proxy)
                self._replace_engine(engine, why)
            case p.EngineExited(reason=code, detail=detail):
                self._retiring.pop(engine, None)
                self._forget_current()
                log_event(log, "engine gone", session=self.name, reason=code, detail=detail)
                why = reasons.reason(code, detail=detail)
                if code == "engine_unavailable":
                    self._rest(State.FAILED, why)
                else:
                    self._schedule_retry(why)

    def _on_keepalive_missed(self, misses: int, last_success: float) -> None:
        """A connected link that stops answering its keepalive (a NAT timeout, a dying
        middlebox, a half-open socket) is left after ``keepalive_grace``: one missed ping
        passes, two in a row do not. whatsmeow itself would wait 3 minutes, then disconnect
        without a word."""
        # No state change, but the status changed: the actor's step publishes it
        # (_publish_if_changed), so subscribers (the UI, the bridge) show it unstable.
        self.keepalive_failing = True
        if last_success > 0:
            self.last_heard = last_success
        if self._keepalive is None:
            self._keepalive = (time.time(), misses)
        else:
            self._keepalive = (self._keepalive[0], misses)
        if self.state is State.CONNECTED and self._deadline is None:
            self._deadline = self.clock() + self.policy.keepalive_grace

    def _link_unresponsive(self) -> Reason:
        since, misses = self._keepalive or (time.time(), 0)
        heard = f"; WhatsApp last answered at {iso(self.last_heard)}" if self.last_heard else ""
        return reasons.reason(
            "link_unresponsive",
            detail=f"{misses} keepalive ping(s) unanswered since {iso(since)}{heard}",
        )

    def _on_qr(self, engine: p.Engine, event: p.QrIssued) -> None:
        now = self.clock()
        age = min(max(0.0, time.time() - event.issued_at), event.lifetime)
        self.qr = LiveQr(event.code, now + event.lifetime - age)
        if self.state is not State.PAIRING_CODE:
            self._set_state(State.QR_READY)
        self._deadline = self.qr.expires_at + self.policy.qr_grace
        self._publish({"type": "qr", "data": self.qr_payload()})
        if self._waiting_pair is not None and self._call is None:
            command, _ = self._waiting_pair
            self._waiting_pair = None
            self._start_pair(engine, command)

    def _announced(self) -> str | None:
        return self.engine_version.describe() if self.engine_version else None

    def _on_replaced(self, engine: p.Engine, node: str | None) -> None:
        """One 440 replaced is a second client taking the device briefly (a restart or deploy
        overlap): reconnect with the backoff, credentials kept. ``replaced_limit`` of them
        within ``replaced_window`` is two clients on one credential set, each reconnect taking
        the device from the other: stop, and say what to look for."""
        now = self.clock()
        self._replaced.append(now)
        while now - self._replaced[0] > self.policy.replaced_window:
            self._replaced.popleft()
        count, policy = len(self._replaced), self.policy
        log_event(log, "another client took over the session", session=self.name, count=count)
        if count >= policy.replaced_limit:
            why = reasons.replaced_repeatedly_reason(count, policy.replaced_window, node=node)
            self._refuse_login(engine, why)
            return
        detail = f"440 replaced {count} time(s) within {policy.replaced_window:g} s; waqr "
        detail += f"stops reconnecting at {policy.replaced_limit}"
        detail += f"; node: {node}" if node else ""
        self._replace_engine(engine, reasons.reason("stream_replaced", detail=detail))

    def _refuse_login(self, engine: p.Engine, why: Reason) -> None:
        self._retire(engine)
        self._rest(State.FAILED, why)

    def _on_disconnected(self, engine: p.Engine) -> None:
        why = self._stream_error or reasons.reason("connection_lost")
        self._stream_error = None
        if self.state in LINKING:
            # An unpaired whatsmeow never reconnects by itself (client.go autoReconnect).
            self._retire(engine)
            if self.current_qr() is None:
                self._batch_exhausted()
            else:
                self._schedule_retry(why)
        elif self.state is State.CONNECTED:
            # whatsmeow reconnects by itself after a drop; give it a grace period.
            self._set_state(State.DISCONNECTED, why)
            self._deadline = self.clock() + self.policy.reconnect_grace
        elif self._linked_in_attempt and self._deadline is not None:
            # Right after linking, a close may beat the 515 restart and whatsmeow then never
            # redials; a real restart logs in within a second or two, so wait briefly only.
            self._deadline = min(self._deadline, self.clock() + self.policy.redial_grace)
        # Otherwise whatsmeow redials by itself (or not: the deadline decides).

    # === deadlines ==========================================================================
    def _deadline_passed(self) -> None:
        engine = self._engine
        if engine is None:
            return
        if self.state in LINKING:
            log_event(log, "QR batch ran out", session=self.name)
            self._retire(engine)
            self._batch_exhausted()
            return
        if self.state is State.DISCONNECTED:
            log_event(log, "engine did not reconnect in time; replacing it", session=self.name)
            self._replace_engine(engine, self.reason)
            return
        if self.state is State.CONNECTED:
            log_event(log, "the link stopped answering; replacing the engine", session=self.name)
            self._replace_engine(engine, self._link_unresponsive())
            return
        if self._linked_in_attempt:
            code = "login_stalled"
        elif self._heard_from_engine:
            code = "login_stalled" if self.has_credentials else "connect_timeout"
        else:
            code = "connect_timeout"
        waited = self.policy.login_timeout if self._linked_in_attempt else self.policy.dial_timeout
        log_event(
            log, "engine made no progress in time; replacing it", session=self.name, reason=code
        )
        self._replace_engine(
            engine, reasons.reason(code, detail=f"no progress within {waited:g} s")
        )

    def _batch_exhausted(self) -> None:
        self._qr_cycles += 1
        self.qr = None
        self.pairing = None
        if self._demand_is_recent() and self._qr_cycles < self.policy.qr_max_cycles:
            log_event(
                log,
                "someone is waiting; fetching a new QR batch",
                session=self.name,
                cycle=self._qr_cycles,
            )
            self._start_at = self.clock()
            self._set_state(State.CONNECTING, reasons.reason("qr_batch_exhausted"))
        else:
            self._rest(State.QR_TIMEOUT, reasons.reason("qr_timeout"))

    def _demand_is_recent(self) -> bool:
        # Event subscribers do not count: the bridge listens all the time; a person waiting
        # shows by asking for the QR (GET /qr, the images, a pairing code).
        last = self._last_demand
        return last is not None and self.clock() - last <= self.policy.qr_demand_window

    # === commands ===========================================================================
    def _on_reconnect(self, command: i.Reconnect) -> None:
        if self._restart_in_flight is not None:
            command.answer(i.ReconnectResult(started=False, queued_behind=command.queued_behind))
            return
        self._record_action("reconnect")
        log_event(log, "restart requested", session=self.name, action="reconnect")
        # A plain reconnect is an action, not a cause: lastDisconnectReason keeps saying why
        # the session was down (a keepalive nudge must not hide it).
        self._restart(State.CONNECTING, None, kind="reconnect")
        command.answer(i.ReconnectResult(started=True, queued_behind=command.queued_behind))

    def _restart(self, state: State, why: Reason | None, *, kind: str) -> None:
        self._restart_in_flight = kind
        self._backoff.reset()
        self._replaced.clear()  # the operator acted: count replacements afresh
        self._qr_cycles = 0
        self.pairing = None
        self._refuse_waiting_pair()
        if self._engine is not None:
            self._retire(self._engine)
        self._start_at = self.clock()
        self.qr = None
        self._set_state(state, why)

    async def _on_unlink_request(self, command: i.Reconnect | i.Logout) -> None:
        relink = isinstance(command, i.Reconnect)
        if relink and self._restart_in_flight == "wipe":
            command.answer(i.ReconnectResult(started=False, queued_behind=command.queued_behind))
            return
        code = "reset_requested" if relink else "logout_requested"
        self._record_action(code)
        log_event(log, "restart requested", session=self.name, action=code)
        after = (State.STARTING if relink else State.LOGGED_OUT, reasons.reason(code))
        if isinstance(command, i.Reconnect):  # a relink answers at once; a logout with the unlink
            command.answer(i.ReconnectResult(started=True, queued_behind=command.queued_behind))
        self._unlink = _Unlink(command, after, self.clock() + self.policy.unlink_wait)
        self._try_unlink()

    def _try_unlink(self) -> None:
        """Unlink the old device at WhatsApp first (best effort), so dead entries do not pile up
        in the phone's Linked devices (WhatsApp allows four). An engine that is (re)connecting
        with the credentials is waited for, within ``unlink_wait``; otherwise wipe locally."""
        pending = self._unlink
        if pending is None or self._call is not None:
            return
        engine = self._engine
        if self.state is State.CONNECTED and engine is not None:
            self._call = self._start_call("logout", engine, engine.logout(), pending.command)
            return
        reconnecting = self.state in (State.CONNECTING, State.STARTING, State.DISCONNECTED)
        if not (self.has_credentials and reconnecting) or self.clock() >= pending.until:
            self._complete_unlink(unlinked=False)

    def _complete_unlink(self, *, unlinked: bool, engine: p.Engine | None = None) -> None:
        pending, self._unlink = self._unlink, None
        if pending is None:
            return
        try:
            if engine is not None and engine is self._engine:
                self._retire(engine)
            self._finish_unlink(pending.after)
        finally:
            if isinstance(pending.command, i.Logout):
                queued = pending.command.queued_behind
                pending.command.answer(i.LogoutResult(unlinked=unlinked, queued_behind=queued))

    def _finish_unlink(self, after: tuple[State, Reason]) -> None:
        self._wipe_first = True
        self.account = None
        self._restart(*after, kind="wipe")

    def _on_pair_code(self, command: i.PairCode) -> None:
        if self.state is State.CONNECTED:
            command.refuse(
                SessionBusy("the session is already linked; log out first to link another")
            )
            return
        if self.has_credentials and self.state not in LINKING:
            command.refuse(
                SessionBusy(
                    f"the session holds credentials and is {self.state.value}; "
                    "relink with POST /reconnect?reset=true to link another account"
                )
            )
            return
        self._last_demand = self.clock()
        if self.state in RESTING and self._engine is None:
            self._qr_cycles = 0
            self._start_at = self.clock()
        engine = self._engine
        if self.state in LINKING and engine is not None and self.current_qr() is not None:
            self._start_pair(engine, command)
            return
        # whatsmeow accepts PairPhone only while a connect runs, i.e. after its first QR.
        if self._waiting_pair is not None:
            self._waiting_pair[0].refuse(SessionBusy("superseded by a newer pairing request"))
        self._waiting_pair = (command, self.clock() + self.policy.pair_wait)

    def _start_pair(self, engine: p.Engine, command: i.PairCode) -> None:
        self._call = self._start_call(
            "pair_code", engine, engine.pair_phone(command.phone_digits), command
        )

    def _cannot_pair_now(self, default: str) -> str:
        if self.state in (State.DISCONNECTED, State.FAILED, State.QR_TIMEOUT) and self.reason:
            why = f"the session is {self.state.value} ({self.reason.message})"
            return f"cannot pair now: {why}; try again"
        return f"cannot pair now: {default}; try again"

    def _refuse_waiting_pair(self) -> None:
        if self._waiting_pair is not None:
            command, _ = self._waiting_pair
            self._waiting_pair = None
            command.refuse(SessionBusy(self._cannot_pair_now(f"the session is {self.state.value}")))

    def _refuse_pending(self, error: Exception) -> None:
        self._refuse_waiting_pair()
        if self._unlink is not None:
            self._unlink.command.refuse(error)
            self._unlink = None
        while self._deferred:
            self._deferred.popleft().refuse(error)

    def _record_action(self, action: str) -> None:
        self.last_action = {"action": action, "at": iso(time.time())}

    # === engine calls =======================================================================
    def _start_call(
        self, name: str, engine: p.Engine, call: Awaitable[Any], command: i.Command | None
    ) -> _Call:
        """Run an engine call as a task; its result comes back through the queue."""
        token = object()

        async def run() -> None:
            done = i.CallDone(name, engine, token)
            try:
                done = dataclasses.replace(done, result=await call)
            except Exception as exc:
                done = dataclasses.replace(done, error=exc)
            self._inbox.put_nowait(done)

        task = spawn(run(), name=f"session-{self.name}-{name}")
        deadline = self.clock() + self.policy.command_bound
        return _Call(name, engine, command, task, token, deadline)

    async def _overdue_calls(self, now: float) -> None:
        """A call past its bound ends as if the engine had said it is unresponsive."""
        for call in (self._call, self._probe):
            if call is not None and now >= call.deadline:
                call.task.cancel()
                error = EngineUnresponsive(f"the engine did not answer {call.name} in time")
                await self._on_call_done(
                    i.CallDone(call.name, call.engine, call.token, error=error)
                )

    def _start_ping(self, engine: p.Engine) -> _Call:
        return self._start_call("ping", engine, engine.ping(), None)

    def _cancel_call(self, why: str) -> None:
        call, self._call = self._call, None
        if call is not None:
            call.task.cancel()
            # A cancelled unlink stays pending: it still wipes, and answers when it does.
            unlinking = self._unlink is not None and call.command is self._unlink.command
            if call.command is not None and not unlinking:
                call.command.refuse(SessionUnavailable(why))

    async def _on_call_done(self, done: i.CallDone) -> None:
        if self._probe is not None and done.token is self._probe.token:
            self._probe = None
            if done.engine is not self._engine:
                return
            if done.error is None:
                self._next_ping = self.clock() + self.policy.ping_interval
                return
            log_event(
                log,
                "engine failed its ping; replacing it",
                level=logging.WARNING,
                session=self.name,
                error=str(done.error),
            )
            self._replace_engine(
                done.engine, reasons.reason("engine_unresponsive", detail=str(done.error))
            )
            return
        if self._call is None or done.token is not self._call.token:
            return  # a call that was cancelled after it finished
        command = self._call.command
        self._call = None
        if done.name == "logout":
            self._on_unlinked(done)
        elif isinstance(command, i.PairCode):
            self._on_paired(done, command)

    def _on_unlinked(self, done: i.CallDone) -> None:
        if done.error is not None:
            log_event(
                log,
                "unlink at WhatsApp failed; wiping locally",
                level=logging.WARNING,
                session=self.name,
                error=str(done.error),
            )
        self._complete_unlink(unlinked=done.error is None, engine=done.engine)

    def _on_paired(self, done: i.CallDone, command: i.PairCode) -> None:
        if done.error is not None:
            if isinstance(done.error, EngineUnresponsive) and done.engine is self._engine:
                # A hung engine: recycle it, keeping whatever credentials it has.
                self._replace_engine(
                    done.engine, reasons.reason("engine_unresponsive", detail=str(done.error))
                )
            command.refuse(done.error)
            return
        if done.engine is not self._engine or self.state not in LINKING:
            command.refuse(
                SessionBusy(self._cannot_pair_now("the engine stopped before it could pair"))
            )
            return
        self.pairing = PairingCode(str(done.result), mask_phone(command.phone_digits), time.time())
        self._set_state(State.PAIRING_CODE)
        command.answer(self.pairing)

    # === state and events ===================================================================
    def _set_state(self, state: State, reason: Reason | None = None) -> None:
        changed = state is not self.state or reason is not None
        if state is not self.state:
            self.since = self.clock()
        self.state = state
        if reason is not None:
            self.reason = reason
        if not changed:
            return
        log_event(
            log,
            "session state",
            session=self.name,
            state=state.value,
            reason=reason.code if reason is not None else None,
        )
        self._publish_status()

    def _publish_if_changed(self) -> None:
        """Subscribers (the bridge answers from what it was told) learn every change of the
        status, not only of the state: a retry scheduled, keepalive failing, a frame heard.
        Only the QR's countdown is left out: it changes every instant, and a subscriber
        computes it from the ``qr`` event's ``expires_in``."""
        if not self._subscribers:
            return
        status = self.status()
        if _lasting(status) != _lasting(self._published):
            self._publish_status(status)

    def _publish_status(self, status: dict[str, Any] | None = None) -> None:
        """Send ``status`` (default: the status now) to every subscriber as a state event."""
        status = self.status() if status is None else status
        self._published = status
        self._publish({"type": "state", "data": status})

    def linked_engine(self) -> p.Engine | None:
        """The engine to send through: the current one, while the session is connected."""
        return self._engine if self.state is State.CONNECTED else None

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Tell every subscriber (SSE) of an event that is not the session's own state."""
        self._publish({"type": kind, "data": data})

    def _publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)


def _lasting(status: dict[str, Any] | None) -> dict[str, Any] | None:
    """A status without what changes by the clock alone: the QR's countdown, and the
    milliseconds of times converted from the monotonic clock (they jitter between calls)."""
    if status is None:
        return None
    qr = status.get("qr")
    lasting = {**status, "qr": {**qr, "expiresIn": None} if isinstance(qr, dict) else qr}
    for key in ("since", "nextRetryAt", "deadlineAt"):
        if isinstance(lasting.get(key), str):
            lasting[key] = lasting[key][:19]
    return lasting
