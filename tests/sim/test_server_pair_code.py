"""Linking with a pairing code: companion_hello, the phone's primary_hello, companion_finish."""

from __future__ import annotations

import asyncio
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.sim.fake_wa_client import ClientLink, ConnectFactory, FakeDevice
from waqr.sim import paircode
from waqr.sim.binary import JID, SERVER_JID, Node
from waqr.sim.state import LinkedDevice, PairingFailedError, UnknownQRError, World

CODE = "ABCD-EFGH"


class CodeClient:
    """whatsmeow's PairPhone side, on top of the fake device (pair-code.go, facts only)."""

    def __init__(self, link: ClientLink, device: FakeDevice) -> None:
        self.link, self.device = link, device
        self.ephemeral = X25519PrivateKey.generate()

    async def hello(self, phone: str) -> bytes:
        await self.link.handshake(self.device.registration_payload())
        await self.link.recv()  # pair-device
        wrapped = paircode.wrap_ephemeral(CODE, self.ephemeral.public_key().public_bytes_raw())
        noise = self.device.noise_key.public_key().public_bytes_raw()
        request = Node(
            paircode.TAG,
            {"jid": JID(phone, "s.whatsapp.net"), "stage": "companion_hello"},
            [
                Node("link_code_pairing_wrapped_companion_ephemeral_pub", {}, wrapped),
                Node("companion_server_auth_key_pub", {}, noise),
                Node("companion_platform_id", {}, b"6"),
                Node("companion_platform_display", {}, b"Safari (Linux)"),
                Node("link_code_pairing_nonce", {}, b"\x00"),
            ],
        )
        reply = await self.link.query(
            Node("iq", {"id": "h1", "xmlns": "md", "type": "set", "to": SERVER_JID}, [request])
        )
        registration = reply.child(paircode.TAG)
        ref = registration.child("link_code_pairing_ref") if registration else None
        assert ref is not None and ref.data
        return ref.data

    async def finish(self, notification: Node) -> None:
        stage = notification.child(paircode.TAG)
        assert stage is not None and notification.attr("type") == paircode.TAG
        wrapped_primary = stage.child("link_code_pairing_wrapped_primary_ephemeral_pub")
        primary_identity = stage.child("primary_identity_pub")
        ref = stage.child("link_code_pairing_ref")
        assert wrapped_primary is not None and primary_identity is not None and ref is not None
        primary_ephemeral = paircode.unwrap_ephemeral(CODE, wrapped_primary.data)
        shared = self.ephemeral.exchange(X25519PublicKey.from_public_bytes(primary_ephemeral))
        salt, nonce, adv_random = os.urandom(32), os.urandom(12), os.urandom(32)
        bundle = self.device.identity.public + primary_identity.data + adv_random
        sealed = AESGCM(paircode.bundle_key(shared, salt)).encrypt(nonce, bundle, None)
        identity_shared = self.device.identity.x25519_private().exchange(
            X25519PublicKey.from_public_bytes(primary_identity.data)
        )
        self.device.adv_secret = paircode.derive_adv_secret(shared, identity_shared, adv_random)
        request = Node(
            paircode.TAG,
            {"stage": "companion_finish"},
            [
                Node("link_code_pairing_wrapped_key_bundle", {}, salt + nonce + sealed),
                Node("companion_identity_public", {}, self.device.identity.public),
                Node("link_code_pairing_ref", {}, ref.data),
            ],
        )
        self.link.send(
            Node("iq", {"id": "f1", "xmlns": "md", "type": "set", "to": SERVER_JID}, [request])
        )


async def _exchange(
    connect: ConnectFactory, world: World, typed_code: str
) -> tuple[LinkedDevice | BaseException, CodeClient]:
    device = FakeDevice()
    client = CodeClient(connect(device), device)
    await client.hello("15550002222")
    linking = asyncio.create_task(world.enter_link_code(typed_code, "+1 555 000 2222"))
    notification = await client.link.recv()
    assert notification is not None and notification.tag == "notification"
    await client.finish(notification)
    finish_reply = await client.link.recv()
    assert finish_reply is not None and finish_reply.attr("id") == "f1"
    if typed_code.replace("-", "").upper() == CODE.replace("-", ""):
        pair_success = await client.link.recv()
        assert pair_success is not None
        client.link.send(device.answer_pair_success(pair_success))
    outcome = await asyncio.gather(linking, return_exceptions=True)
    return outcome[0], client


async def test_typed_code_links_the_client_that_asked_for_it(
    connect: ConnectFactory, world: World
) -> None:
    linked, client = await _exchange(connect, world, CODE.lower())
    assert isinstance(linked, LinkedDevice) and str(linked.jid) == "15550002222:1@s.whatsapp.net"
    restart = await client.link.recv()
    assert restart is not None and restart.attr("code") == "515"


async def test_mistyped_code_fails_without_linking(connect: ConnectFactory, world: World) -> None:
    outcome, _ = await _exchange(connect, world, "WXYZ-1234")
    assert isinstance(outcome, PairingFailedError) and world.devices == {}


async def test_code_for_a_phone_nobody_asked_about_is_unknown(world: World) -> None:
    with pytest.raises(UnknownQRError):
        await world.enter_link_code(CODE, "+44 1234")
