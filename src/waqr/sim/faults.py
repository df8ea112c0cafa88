"""``GET/POST /faults``: the JSON shapes, their bounds, and how a request changes the world.

A POST is applied in this order: ``clear`` (back to defaults), the persistent settings, then the
queued faults and the ones that act on live sessions at once. Only the keys a request names are
touched; for ``unpaired_close_after``, ``chaos`` and ``black_hole`` an explicit ``null`` means
"off". Unknown keys and out-of-range values are refused (422, FastAPI's JSON ``detail`` names the
field).

Persistent settings (until changed or cleared)::

    refs                  pair-device refs per registration (default 6)
    ignore_pings          leave w:p pings unanswered
    after_pair            "close" (default) | "linger" | "close_without_515" (state.AfterPair)
    unpaired_close_after  seconds until an unpaired connection is ended (default 210, null never)
    chaos                 {"seed", "delay_max", "early_close", "drop_acks"} or null (chaos.py)
    black_hole            {"seconds", "then", "after_login"} or null (blackhole.py): every login
                          goes silent after_login s after <success>; null and clear also lift
                          the holes live connections are in

Acting on live logged-in sessions at once: ``stream_error`` with ``now``,
``drop_linked_sessions``, ``black_hole`` with ``now`` (a hole for each, the setting untouched).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from waqr.sim.blackhole import BlackHoleSettings, HoleEnd
from waqr.sim.chaos import Chaos, ChaosSettings
from waqr.sim.frontdoor import FrontDoorFault
from waqr.sim.state import AfterPair, Conflict, Refusal, StreamFault, World

MAX_SEED = 2**63 - 1  # JSON-safe for most clients and plenty for random.Random
MAX_DELAY = 30.0  # beyond the client's 20 s handshake and 10 s ping deadlines already
MAX_UNPAIRED_CLOSE_AFTER = 24 * 3600.0
# A hole shorter than 0.5 s hides nothing from a 10 s ping deadline; an hour is far beyond
# whatsmeow's KeepAliveMaxFailTime of 3 min (keepalive.go).
MIN_BLACK_HOLE, MAX_BLACK_HOLE = 0.5, 3600.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt fault must not pass as "no fault"


class FailureSpec(_Strict):
    """``<failure reason=...>`` for the next connections (doc §10)."""

    reason: int = Field(ge=100, le=999)
    code: int | None = None
    expire: int | None = None
    message: str | None = Field(default=None, max_length=200)
    on: Literal["login", "registration", "any"] = "login"
    times: int = Field(default=1, ge=1, le=1000)


class StreamErrorSpec(_Strict):
    """``<stream:error>``: after the next logins are connected, or ``now`` to live sessions."""

    code: int | None = Field(default=None, ge=100, le=999)
    conflict: Conflict | None = None
    times: int = Field(default=1, ge=1, le=1000)
    now: bool = False


class ChaosSpec(_Strict):
    """Seeded chaos (``chaos.py``): delays, unanswered iqs, early closes; same seed, same run."""

    seed: int = Field(strict=True, ge=0, le=MAX_SEED)
    delay_max: float = Field(default=0.0, ge=0.0, le=MAX_DELAY, allow_inf_nan=False)
    early_close: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    drop_acks: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)


class BlackHoleSpec(_Strict):
    """An open connection that answers nothing (``blackhole.py``), ``seconds`` long (null: until
    lifted), then ``recover`` or ``close``. ``now``: every live logged-in session at once;
    otherwise every login from now on, ``after_login`` seconds after its ``<success>``."""

    seconds: float | None = Field(ge=MIN_BLACK_HOLE, le=MAX_BLACK_HOLE, allow_inf_nan=False)
    then: HoleEnd = "recover"
    now: bool = False
    after_login: float = Field(default=0.0, ge=0.0, le=MAX_BLACK_HOLE, allow_inf_nan=False)

    @field_validator("then")
    @classmethod
    def _an_endless_hole_cannot_close(cls, then: HoleEnd, info: ValidationInfo) -> HoleEnd:
        if then == "close" and "seconds" in info.data and info.data["seconds"] is None:
            raise ValueError('"close" needs seconds: a hole without them never ends')
        return then

    @field_validator("after_login")
    @classmethod
    def _only_for_next_logins(cls, after_login: float, info: ValidationInfo) -> float:
        if info.data.get("now"):
            raise ValueError("after_login is for the next logins, not for a hole opened now")
        return after_login

    def settings(self) -> BlackHoleSettings:
        return BlackHoleSettings(self.seconds, self.then, self.after_login)


class FaultsRequest(_Strict):
    failure: FailureSpec | None = None
    stream_error: StreamErrorSpec | None = None
    drop_linked_sessions: bool = False  # close live logged-in sockets now, no stream:error
    refs: int | None = Field(default=None, ge=1, le=64)  # refs per pair-device from now on
    ignore_pings: bool | None = None  # stop answering keepalive pings (KeepAliveTimeout)
    after_pair: AfterPair | None = None
    unpaired_close_after: float | None = Field(
        default=None, gt=0.0, le=MAX_UNPAIRED_CLOSE_AFTER, allow_inf_nan=False
    )
    chaos: ChaosSpec | None = None
    black_hole: BlackHoleSpec | None = None
    clear: bool = False  # forget queued faults, every setting back to its default
    # The network in front of the protocol (``frontdoor.FrontDoorFault``): refuse_tcp,
    # close_after_connect, untrusted_tls, ws_forbidden, silent_after_client_hello, ...
    front_door: FrontDoorFault | None = None


class FaultsView(BaseModel):
    failures: list[FailureSpec]
    stream_errors: list[StreamErrorSpec]
    refs: int
    ignore_pings: bool
    after_pair: AfterPair
    unpaired_close_after: float | None
    chaos: ChaosSpec | None
    black_hole: BlackHoleSpec | None  # the setting for new logins (``now`` holes are not kept)
    black_holed_sessions: int = 0  # live connections in a hole right now
    front_door: FrontDoorFault | None = None  # None when the API runs without a front door
    affected_sessions: int = 0


def faults_view(world: World, front_door: FrontDoorFault | None, affected: int = 0) -> FaultsView:
    plan = world.faults
    chaos = plan.chaos.settings if plan.chaos is not None else None
    hole = plan.black_hole
    return FaultsView(
        failures=[
            FailureSpec(reason=r.reason, code=r.code, expire=r.expire, message=r.message, on=r.on)
            for r in plan.refusals
        ],
        stream_errors=[
            StreamErrorSpec(code=f.code, conflict=f.conflict) for f in plan.stream_faults
        ],
        refs=plan.ref_count,
        ignore_pings=plan.ignore_pings,
        after_pair=plan.after_pair,
        unpaired_close_after=plan.unpaired_close_after,
        chaos=ChaosSpec(**asdict(chaos)) if chaos is not None else None,
        black_hole=BlackHoleSpec(**asdict(hole)) if hole is not None else None,
        black_holed_sessions=sum(s.black_hole.active for s in world.sessions.values()),
        front_door=front_door,
        affected_sessions=affected,
    )


def _apply_settings(world: World, body: FaultsRequest) -> None:
    plan = world.faults
    named = body.model_fields_set
    if body.clear:
        plan.clear()
    if body.refs is not None:
        plan.ref_count = body.refs
    if body.ignore_pings is not None:
        plan.ignore_pings = body.ignore_pings
    if body.after_pair is not None:
        plan.after_pair = body.after_pair
    if "unpaired_close_after" in named:
        plan.unpaired_close_after = body.unpaired_close_after
    if "chaos" in named:
        spec = body.chaos
        plan.chaos = Chaos(ChaosSettings(**spec.model_dump())) if spec is not None else None
    hole = body.black_hole
    if "black_hole" in named and (hole is None or not hole.now):
        plan.black_hole = hole.settings() if hole is not None else None
    if body.clear or ("black_hole" in named and hole is None):
        for session in world.sessions.values():
            session.black_hole.lift()


async def apply_faults(world: World, body: FaultsRequest) -> int:
    """Change the world as ``body`` asks; how many live sessions were hit at once."""
    _apply_settings(world, body)
    plan = world.faults
    if body.failure is not None:
        f = body.failure
        plan.refusals.extend(
            Refusal(f.reason, f.code, f.expire, f.message, f.on) for _ in range(f.times)
        )
    stream = body.stream_error
    if stream is not None and not stream.now:
        plan.stream_faults.extend(
            StreamFault(stream.code, stream.conflict) for _ in range(stream.times)
        )
    live = world.logged_in()
    hole = body.black_hole
    if hole is not None and hole.now:
        for session in live:
            session.black_hole.open(hole.settings())
    if stream is not None and stream.now:
        await asyncio.gather(*(s.stream_error(stream.code, stream.conflict) for s in live))
        return len(live)
    if body.drop_linked_sessions:
        await asyncio.gather(*(s.drop() for s in live))
        return len(live)
    return len(live) if hole is not None and hole.now else 0
