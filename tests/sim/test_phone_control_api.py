"""The control API a test or a person uses: scan, logout, devices, faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.sim.fake_wa_client import ClientLink, ConnectFactory, FakeDevice
from waqr.sim.binary import Node
from waqr.sim.phone import create_control_app
from waqr.sim.state import World


@pytest.fixture
async def api(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_control_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


async def _showing_qr(connect: ConnectFactory) -> tuple[FakeDevice, ClientLink, str]:
    device = FakeDevice()
    link = connect(device)
    await link.handshake(device.registration_payload())
    pair_device = await link.recv()
    assert pair_device is not None
    return device, link, device.qr_string(pair_device.children[0].children[0].data.decode())


async def _scan(
    api: httpx.AsyncClient, device: FakeDevice, link: ClientLink, qr: str, phone: str | None
) -> httpx.Response:
    body = {"qr": qr} if phone is None else {"qr": qr, "phone": phone}
    request = asyncio.create_task(api.post("/phone/scan", json=body))
    pair_success = await link.recv()
    assert pair_success is not None
    link.send(device.answer_pair_success(pair_success))
    return await request


async def _logged_in(api: httpx.AsyncClient, connect: ConnectFactory) -> ClientLink:
    """A device linked through the API and logged in on a second connection."""
    device, link, qr = await _showing_qr(connect)
    await _scan(api, device, link, qr, None)
    login = connect(device)
    await login.handshake(device.login_payload())
    success = await login.recv()
    assert success is not None and success.tag == "success"
    await login.catch_up()  # nothing was queued: just the <ib><offline count="0"/>
    return login


async def test_scan_links_the_device_showing_the_qr(
    api: httpx.AsyncClient, connect: ConnectFactory
) -> None:
    device, link, qr = await _showing_qr(connect)
    response = await _scan(api, device, link, qr, "+44 7700 900123")
    assert response.status_code == 200, response.text
    assert response.json()["jid"] == "447700900123:1@s.whatsapp.net"
    devices = (await api.get("/devices")).json()
    assert [d["jid"] for d in devices] == ["447700900123:1@s.whatsapp.net"]


async def test_scan_without_phone_uses_the_default_phone(
    api: httpx.AsyncClient, connect: ConnectFactory
) -> None:
    device, link, qr = await _showing_qr(connect)
    response = await _scan(api, device, link, qr, None)
    assert response.json()["jid"] == "15550001111:1@s.whatsapp.net"


async def test_scan_of_garbage_or_stale_qr_is_an_error(api: httpx.AsyncClient) -> None:
    assert (await api.post("/phone/scan", json={"qr": "hello"})).status_code == 422
    oversized = FakeDevice().qr_string("2@" + "A" * 3000)
    refused = await api.post("/phone/scan", json={"qr": oversized})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "qr"]
    assert "2@AAAA" not in refused.text  # the QR, a secret, is not echoed back
    stale = FakeDevice().qr_string("2@gone")
    assert (await api.post("/phone/scan", json={"qr": stale})).status_code == 404


async def test_logout_of_a_connected_device_sends_device_removed(
    api: httpx.AsyncClient, connect: ConnectFactory
) -> None:
    device, link, qr = await _showing_qr(connect)
    await _scan(api, device, link, qr, None)
    login = connect(device)
    await login.handshake(device.login_payload())
    assert (await login.recv()) is not None  # <success>
    await login.catch_up()
    assert (await api.get("/devices")).json()[0]["connected"] is True
    response = await api.post("/phone/logout", json={"jid": str(device.jid)})
    assert response.status_code == 200
    error = await login.recv()
    assert error is not None and error.tag == "stream:error" and error.attr("code") == "401"
    assert (await api.get("/devices")).json() == []
    again = await api.post("/phone/logout", json={"jid": str(device.jid)})
    assert again.status_code == 404


async def test_faults_queue_failures_and_can_be_cleared(api: httpx.AsyncClient) -> None:
    body = {"failure": {"reason": 402, "code": 101, "expire": 3600, "times": 2}, "refs": 1}
    view = (await api.post("/faults", json=body)).json()
    assert [f["reason"] for f in view["failures"]] == [402, 402] and view["refs"] == 1
    view = (await api.post("/faults", json={"clear": True})).json()
    assert view["failures"] == [] and view["refs"] == 6
    assert (await api.post("/faults", json={"failure": {"reason": 7}})).status_code == 422


async def test_fault_can_drop_live_sessions_now(
    api: httpx.AsyncClient, connect: ConnectFactory
) -> None:
    login = await _logged_in(api, connect)
    view = (await api.post("/faults", json={"drop_linked_sessions": True})).json()
    assert view["affected_sessions"] == 1
    assert await login.recv() is None


async def test_stream_error_now_reaches_live_sessions(
    api: httpx.AsyncClient, connect: ConnectFactory
) -> None:
    login = await _logged_in(api, connect)
    body = {"stream_error": {"conflict": "replaced", "now": True}}
    assert (await api.post("/faults", json=body)).json()["affected_sessions"] == 1
    error = await login.recv()
    assert isinstance(error, Node) and error.child("conflict") is not None


async def test_pair_code_without_a_waiting_client_is_not_found(api: httpx.AsyncClient) -> None:
    response = await api.post("/phone/pair-code", json={"code": "ABCD-EFGH"})
    assert response.status_code == 404


async def test_front_door_faults_need_a_front_door(api: httpx.AsyncClient) -> None:
    response = await api.post("/faults", json={"front_door": "refuse_tcp"})
    assert response.status_code == 409
    assert (await api.get("/faults")).json()["front_door"] is None
