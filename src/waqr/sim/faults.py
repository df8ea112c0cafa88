"""``GET/POST /faults``: the JSON shapes, their bounds, and how a request changes the world.

A POST is applied in this order: ``clear`` (back to defaults), the persistent settings, then the
queued faults and the ones that act on live sessions at once. Only the keys a request names are
touched; for ``unpaired_close_after`` and ``chaos`` an explicit ``null`` means "off". Unknown keys
and out-of-range values are refused (422, FastAPI's JSON ``detail`` names the field).

Persistent settings (until changed or cleared)::

    refs                  pair-device refs per registration (default 6)
    ignore_pings          leave w:p pings unanswered
    after_pair            "close" (default) | "linger" | "close_without_515" (state.AfterPair)
    unpaired_close_after  seconds until an unpaired connection is ended (default 210, null never)
    chaos                 {"seed", "delay_max", "early_close", "drop_acks"} or null (chaos.py)
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from waqr.sim.chaos import Chaos, ChaosSettings
from waqr.sim.frontdoor import FrontDoorFault
from waqr.sim.state import AfterPair, Conflict, Refusal, StreamFault, World

MAX_SEED = 2**63 - 1  # JSON-safe for most clients and plenty for random.Random
MAX_DELAY = 30.0  # beyond the client's 20 s handshake and 10 s ping deadlines already
MAX_UNPAIRED_CLOSE_AFTER = 24 * 3600.0


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
    front_door: FrontDoorFault | None = None  # None when the API runs without a front door
    affected_sessions: int = 0


def faults_view(world: World, front_door: FrontDoorFault | None, affected: int = 0) -> FaultsView:
    plan = world.faults
    chaos = plan.chaos.settings if plan.chaos is not None else None
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
    if stream is not None and stream.now:
        await asyncio.gather(*(s.stream_error(stream.code, stream.conflict) for s in live))
        return len(live)
    if body.drop_linked_sessions:
        await asyncio.gather(*(s.drop() for s in live))
        return len(live)
    return 0
