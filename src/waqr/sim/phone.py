"""The simulator's control API: the "phone" a test or a person uses, and the fault switches.

Routes (JSON):
  POST /phone/scan      {"qr": "<QR string as the bot shows it>", "phone": "+1555..." (optional)}
  POST /phone/pair-code {"code": "ABCD-EFGH", "phone": "+1555..." (optional)}
  POST /phone/logout    {"jid": "15550001111:1@s.whatsapp.net"}
  GET  /devices
  GET  /faults, POST /faults {...}  (see ``FaultsRequest``)
The API listens on loopback only and carries secrets (QR payloads) in request bodies, never in
URLs or log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from waqr.sim.frontdoor import FrontDoor, FrontDoorFault
from waqr.sim.node import JID
from waqr.sim.pairing import QRFormatError, parse_qr
from waqr.sim.state import (
    Conflict,
    LinkedDevice,
    PairingFailedError,
    Refusal,
    SimError,
    StreamFault,
    UnknownDeviceError,
    UnknownQRError,
    World,
)

log = logging.getLogger("waqr.sim.phone")


class ScanRequest(BaseModel):
    qr: str = Field(min_length=1, max_length=2048)
    phone: str | None = Field(default=None, max_length=32)


class PairCodeRequest(BaseModel):
    code: str = Field(min_length=8, max_length=9)
    phone: str | None = Field(default=None, max_length=32)


class LogoutRequest(BaseModel):
    jid: str = Field(min_length=3, max_length=128)


class DeviceView(BaseModel):
    jid: str
    lid: str
    platform: str
    linked_at: float
    connected: bool


class FailureSpec(BaseModel):
    """``<failure reason=...>`` for the next connections (doc §10)."""

    reason: int = Field(ge=100, le=999)
    code: int | None = None
    expire: int | None = None
    message: str | None = Field(default=None, max_length=200)
    on: Literal["login", "registration", "any"] = "login"
    times: int = Field(default=1, ge=1, le=1000)


class StreamErrorSpec(BaseModel):
    """``<stream:error>``: after the next logins are connected, or ``now`` to live sessions."""

    code: int | None = Field(default=None, ge=100, le=999)
    conflict: Conflict | None = None
    times: int = Field(default=1, ge=1, le=1000)
    now: bool = False


class FaultsRequest(BaseModel):
    failure: FailureSpec | None = None
    stream_error: StreamErrorSpec | None = None
    drop_linked_sessions: bool = False  # close live logged-in sockets now, no stream:error
    refs: int | None = Field(default=None, ge=1, le=64)  # refs per pair-device from now on
    ignore_pings: bool | None = None  # stop answering keepalive pings (KeepAliveTimeout)
    clear: bool = False  # forget queued failures/stream errors, back to defaults
    # The network in front of the protocol (``frontdoor.FrontDoorFault``): refuse_tcp,
    # close_after_connect, untrusted_tls, ws_forbidden, silent_after_client_hello, ...
    front_door: FrontDoorFault | None = None


class FaultsView(BaseModel):
    failures: list[FailureSpec]
    stream_errors: list[StreamErrorSpec]
    refs: int
    ignore_pings: bool
    front_door: FrontDoorFault | None = None  # None when the API runs without a front door
    affected_sessions: int = 0


def _device_view(world: World, device: LinkedDevice) -> DeviceView:
    connected = any(True for _ in world.sessions_of(device.jid))
    return DeviceView(
        jid=str(device.jid),
        lid=str(device.lid),
        platform=device.platform,
        linked_at=device.linked_at,
        connected=connected,
    )


def _faults_view(world: World, front_door: FrontDoor | None, affected: int = 0) -> FaultsView:
    plan = world.faults
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
        front_door=front_door.fault if front_door is not None else None,
        affected_sessions=affected,
    )


def get_world(request: Request) -> World:
    world: World = request.app.state.world
    return world


WorldDep = Annotated[World, Depends(get_world)]


async def _apply_faults(world: World, body: FaultsRequest) -> int:
    plan = world.faults
    if body.clear:
        plan.refusals.clear()
        plan.stream_faults.clear()
        plan.ref_count, plan.ignore_pings = type(plan)().ref_count, False
    if body.refs is not None:
        plan.ref_count = body.refs
    if body.ignore_pings is not None:
        plan.ignore_pings = body.ignore_pings
    if body.failure is not None:
        f = body.failure
        plan.refusals.extend(
            Refusal(f.reason, f.code, f.expire, f.message, f.on) for _ in range(f.times)
        )
    affected = 0
    stream = body.stream_error
    if stream is not None and not stream.now:
        plan.stream_faults.extend(
            StreamFault(stream.code, stream.conflict) for _ in range(stream.times)
        )
    live = world.logged_in()
    if stream is not None and stream.now:
        await asyncio.gather(*(s.stream_error(stream.code, stream.conflict) for s in live))
        affected = len(live)
    elif body.drop_linked_sessions:
        await asyncio.gather(*(s.drop() for s in live))
        affected = len(live)
    return affected


@contextlib.contextmanager
def _as_http_errors() -> Iterator[None]:
    """The world's refusals as HTTP statuses: nothing to link 404, client said no 409."""
    try:
        yield
    except (UnknownQRError, UnknownDeviceError) as exc:
        raise HTTPException(404, str(exc)) from exc
    except PairingFailedError as exc:
        raise HTTPException(409, str(exc)) from exc
    except SimError as exc:
        raise HTTPException(400, str(exc)) from exc


def create_control_app(world: World, *, front_door: FrontDoor | None = None) -> FastAPI:
    """The FastAPI app for one simulated world (and, if given, its front door's faults)."""
    app = FastAPI(title="waqr WhatsApp simulator control", docs_url=None, redoc_url=None)
    app.state.world = world

    @app.post("/phone/scan")
    async def scan(body: ScanRequest, world: WorldDep) -> DeviceView:
        try:
            qr = parse_qr(body.qr)
        except QRFormatError as exc:
            raise HTTPException(422, f"not a linking QR code: {exc}") from exc
        with _as_http_errors():
            device = await world.scan(qr, body.phone)
        return _device_view(world, device)

    @app.post("/phone/pair-code")
    async def pair_code(body: PairCodeRequest, world: WorldDep) -> DeviceView:
        with _as_http_errors():
            device = await world.enter_link_code(body.code, body.phone)
        return _device_view(world, device)

    @app.post("/phone/logout")
    async def logout(body: LogoutRequest, world: WorldDep) -> DeviceView:
        try:
            jid = JID.parse(body.jid)
            device = world.unlink(jid)
        except (ValueError, UnknownDeviceError) as exc:
            raise HTTPException(404, "no linked device has that JID") from exc
        view = _device_view(world, device)
        # Doc §9: 401 + conflict device_removed makes the client delete its session.
        await asyncio.gather(
            *(s.stream_error(401, "device_removed") for s in world.sessions_of(device.jid))
        )
        return view

    @app.get("/devices")
    async def devices(world: WorldDep) -> list[DeviceView]:
        return [_device_view(world, d) for d in world.devices.values()]

    @app.get("/faults")
    async def faults(world: WorldDep) -> FaultsView:
        return _faults_view(world, front_door)

    @app.post("/faults")
    async def set_faults(body: FaultsRequest, world: WorldDep) -> FaultsView:
        if body.front_door is not None and front_door is None:
            raise HTTPException(409, "this control API has no front door to misbehave")
        if front_door is not None and (body.front_door is not None or body.clear):
            await front_door.set_fault(body.front_door or FrontDoorFault.NONE)
        return _faults_view(world, front_door, await _apply_faults(world, body))

    return app
