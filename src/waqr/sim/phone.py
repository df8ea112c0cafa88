"""The simulator's control API: the "phone" a test or a person uses, and the fault switches.

Routes (JSON):
  POST /phone/scan      {"qr": "<QR string as the bot shows it>", "phone": "+1555..." (optional)}
  POST /phone/pair-code {"code": "ABCD-EFGH", "phone": "+1555..." (optional)}
  POST /phone/logout    {"jid": "15550001111:1@s.whatsapp.net"}
  GET  /devices
  POST /contacts/{number}/send {"text": "...", "reply_to": "<message id>" (optional),
                                "to": "+1555..." (optional: the account, else the default phone)}
                                     accepted for a linked device that is not connected too:
                                     held in its offline queue until its next login
  GET  /contacts/{number}/messages   what the contact received from linked devices
  POST /contacts/{number}/read {"id": "<message id>"}  the contact reads it: a read receipt
  POST /contacts/{number}/offline    the contact's phone goes offline: messages to it wait
  POST /contacts/{number}/online     it comes back: receives them in order, delivery receipts
  POST /phone/send {"to": "+49...", "text": "...", "phone": "+1555..." (optional)}  the
                                     account's own phone writes to a contact; its linked
                                     devices get the copy (IsFromMe)
  GET  /faults, POST /faults {...}  (see ``faults.py``)
The API listens on loopback only and carries secrets (QR payloads) in request bodies, never in
URLs or log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from waqr.sim.faults import FaultsRequest, FaultsView, apply_faults, faults_view
from waqr.sim.frontdoor import FrontDoor, FrontDoorFault
from waqr.sim.node import JID
from waqr.sim.pairing import QRFormatError, parse_qr
from waqr.sim.signal.contact import Contact
from waqr.sim.state import (
    LinkedDevice,
    PairingFailedError,
    SimError,
    UnknownDeviceError,
    UnknownQRError,
    World,
)
from waqr.sim.users import (
    ContactOffline,
    NoLinkedDevice,
    UnknownMessage,
    come_online,
    go_offline,
    mark_read,
    send_from_contact,
    send_from_phone,
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


class ContactSendRequest(BaseModel):
    text: str = Field(min_length=1, max_length=65536)
    reply_to: str | None = Field(default=None, min_length=1, max_length=128)
    to: str | None = Field(default=None, max_length=32)


class PhoneSendRequest(BaseModel):
    to: str = Field(min_length=1, max_length=32)
    text: str = Field(min_length=1, max_length=65536)
    phone: str | None = Field(default=None, max_length=32)


class ContactPresenceView(BaseModel):
    number: str
    online: bool
    waiting: int  # messages the server holds for it
    received: list[str]  # ids it received on coming back, in order


class ContactReadRequest(BaseModel):
    id: str = Field(min_length=1, max_length=128)


class ContactSendView(BaseModel):
    id: str
    delivered_to: list[str]  # linked devices connected now
    queued_for: list[str] = []  # linked devices not connected: held in their offline queue


class ContactMessageView(BaseModel):
    id: str
    sender: str
    text: str
    quoted_id: str | None


class DeviceView(BaseModel):
    jid: str
    lid: str
    platform: str
    linked_at: float
    connected: bool
    app_version: str  # the WhatsApp Web version the client announced (ClientPayload)
    queued: int  # stanzas in its offline queue: not yet handed over, or not yet acknowledged


def _device_view(world: World, device: LinkedDevice) -> DeviceView:
    connected = any(True for _ in world.sessions_of(device.jid))
    return DeviceView(
        jid=str(device.jid),
        lid=str(device.lid),
        platform=device.platform,
        linked_at=device.linked_at,
        connected=connected,
        app_version=device.app_version,
        queued=len(world.queued_for(device.jid)),
    )


def _contact(world: World, number: str) -> Contact:
    try:
        return world.contact(number)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


def get_world(request: Request) -> World:
    world: World = request.app.state.world
    return world


WorldDep = Annotated[World, Depends(get_world)]


@contextlib.contextmanager
def _as_http_errors() -> Iterator[None]:
    """The world's refusals as HTTP statuses: nothing to link 404, client said no 409."""
    try:
        yield
    except (UnknownQRError, UnknownDeviceError) as exc:
        raise HTTPException(404, str(exc)) from exc
    except (PairingFailedError, ContactOffline, NoLinkedDevice) as exc:
        raise HTTPException(409, str(exc)) from exc
    except UnknownMessage as exc:
        raise HTTPException(404, str(exc)) from exc
    except SimError as exc:
        raise HTTPException(400, str(exc)) from exc


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field, without echoing the input: it may be a QR payload (a secret),
    or a NaN that FastAPI's own handler cannot even write as JSON."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    return JSONResponse({"detail": detail}, status_code=422)


def _front_door_fault(front_door: FrontDoor | None) -> FrontDoorFault | None:
    return front_door.fault if front_door is not None else None


def create_control_app(world: World, *, front_door: FrontDoor | None = None) -> FastAPI:
    """The FastAPI app for one simulated world (and, if given, its front door's faults)."""
    app = FastAPI(title="waqr WhatsApp simulator control", docs_url=None, redoc_url=None)
    app.state.world = world
    app.add_exception_handler(RequestValidationError, _invalid_request)

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

    @app.post("/contacts/{number}/send")
    async def contact_send(
        number: str, body: ContactSendRequest, world: WorldDep
    ) -> ContactSendView:
        contact = _contact(world, number)
        with _as_http_errors():
            account = world.phone(body.to).number
            sent = await send_from_contact(
                world, contact, account, body.text, quoted_id=body.reply_to
            )
        return ContactSendView(
            id=sent.message_id,
            delivered_to=[str(j) for j in sent.delivered_to],
            queued_for=[str(j) for j in sent.queued_for],
        )

    @app.post("/contacts/{number}/read")
    async def contact_read(
        number: str, body: ContactReadRequest, world: WorldDep
    ) -> ContactSendView:
        contact = _contact(world, number)
        with _as_http_errors():
            told = await mark_read(world, contact, body.id)
        return ContactSendView(id=body.id, delivered_to=[str(j) for j in told])

    @app.post("/contacts/{number}/offline")
    async def contact_offline(number: str, world: WorldDep) -> ContactPresenceView:
        contact = _contact(world, number)
        go_offline(world, contact)
        waiting = len(world.offline_contacts[contact.phone])
        return ContactPresenceView(number=contact.phone, online=False, waiting=waiting, received=[])

    @app.post("/contacts/{number}/online")
    async def contact_online(number: str, world: WorldDep) -> ContactPresenceView:
        contact = _contact(world, number)
        received = await come_online(world, contact)
        return ContactPresenceView(
            number=contact.phone,
            online=True,
            waiting=0,
            received=[text.message_id for text in received],
        )

    @app.post("/phone/send")
    async def phone_send(body: PhoneSendRequest, world: WorldDep) -> ContactSendView:
        contact = _contact(world, body.to)
        with _as_http_errors():
            phone = world.phone(body.phone)
        sent = await send_from_phone(world, phone, contact, body.text)
        return ContactSendView(id=sent.message_id, delivered_to=[str(j) for j in sent.delivered_to])

    @app.get("/contacts/{number}/messages")
    async def contact_messages(number: str, world: WorldDep) -> list[ContactMessageView]:
        return [
            ContactMessageView(
                id=received.message_id,
                sender=str(received.sender),
                text=received.message.text,
                quoted_id=received.message.quoted_id,
            )
            for received in _contact(world, number).inbox
        ]

    @app.get("/faults")
    async def faults(world: WorldDep) -> FaultsView:
        return faults_view(world, _front_door_fault(front_door))

    @app.post("/faults")
    async def set_faults(body: FaultsRequest, world: WorldDep) -> FaultsView:
        if body.front_door is not None and front_door is None:
            raise HTTPException(409, "this control API has no front door to misbehave")
        if front_door is not None and (body.front_door is not None or body.clear):
            await front_door.set_fault(body.front_door or FrontDoorFault.NONE)
        affected = await apply_faults(world, body)
        return faults_view(world, _front_door_fault(front_door), affected)

    return app
