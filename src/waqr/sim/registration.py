"""A new device linking itself: pair-device refs, the phone's scan, pair-success, restart (doc §6).

Lives on a registration connection. ``start`` offers the QR refs; ``pair`` is what a phone's
scan triggers: it proves the account to the client (ADV HMAC + account signature), checks the
client's device signature in ``pair-device-sign``, records the device and asks the client to
reconnect with ``stream:error 515``, after which it logs in on a new connection.

Harsh where WhatsApp is (shared/docs/wa-server-behaviour.md): the socket is dropped right after
the 515 (fault setting ``after_pair``), nothing is sent when the client's QR refs run out (the
client disconnects itself), and a connection still unpaired after ``unpaired_close_after``
seconds gets ``<xmlstreamend/>`` and a close.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

from waqr.sim.binary import JID, SERVER_JID, AttrValue, Node
from waqr.sim.linkcode import LinkCodeExchange
from waqr.sim.node import DEFAULT_SERVER
from waqr.sim.pairing import (
    DeviceSignatureError,
    QRPayload,
    build_device_identity,
    check_device_signature,
    verify_signed_prekey,
)
from waqr.sim.state import AfterPair, LinkedDevice, PairingFailedError, Phone, UnknownQRError

if TYPE_CHECKING:
    from waqr.sim.server import Session

log = logging.getLogger("waqr.sim.registration")

PAIR_REPLY_TIMEOUT: Final = 15.0
MAX_DEVICE_ID: Final = 255  # AD_JID carries the device in one byte (doc §5.3)
# after_pair="linger": the old, kind behaviour; the client closes first when it handles the 515.
LINGER_CLOSE_AFTER: Final = 10.0


def new_ref() -> str:
    """A pairing ref as the real server makes them: ``2@`` + base64, no commas (doc §6.1)."""
    return "2@" + base64.b64encode(secrets.token_bytes(48)).decode()


class Registration:
    """The registration half of one ``Session``."""

    def __init__(self, session: Session, pairing_data: Any) -> None:
        self.session = session
        self.identity_key = bytes(pairing_data.eIdent)
        self.registration_id = int.from_bytes(bytes(pairing_data.eRegid), "big")
        self.signed_prekey = bytes(pairing_data.eSkeyVal)
        self.signed_prekey_signature = bytes(pairing_data.eSkeySig)
        self.refs: list[str] = []
        self.paired: LinkedDevice | None = None
        self.link_code = LinkCodeExchange(self)
        self._pairing = asyncio.Lock()

    async def start(self) -> bool:
        """Check the registration payload and offer QR refs; False ends the connection."""
        if not verify_signed_prekey(
            self.identity_key, self.signed_prekey, self.signed_prekey_signature
        ):
            log.warning("conn %d: signed prekey signature invalid", self.session.conn_id)
            return False
        world = self.session.world
        deadline = world.faults.unpaired_close_after
        if deadline is not None:
            self.session.spawn(self._end_if_unpaired(deadline), "unpaired-close")
        self.refs = [new_ref() for _ in range(max(1, world.faults.ref_count))]
        world.offer_refs(self.refs, self)
        iq = Node(
            "iq",
            {"from": SERVER_JID, "id": self.session.new_iq_id(), "type": "set", "xmlns": "md"},
            [Node("pair-device", {}, [Node("ref", {}, ref.encode()) for ref in self.refs])],
        )
        await self.session.send_node(iq)
        log.info("conn %d: offered %d QR refs", self.session.conn_id, len(self.refs))
        # No timer follows the refs: when they run out the client disconnects by itself
        # (whatsmeow qrchan.go, ~160 s for 6) and WhatsApp says nothing in the meantime.
        return not await self.session.chaos_close("pair_device")

    async def _end_if_unpaired(self, deadline: float) -> None:
        """Observed (whatsmeow PR #430): WhatsApp ends a socket that never paired after ~210 s
        with ``<xmlstreamend/>`` (token 2, doc §5.4; whatsmeow only logs it) and a close."""
        await asyncio.sleep(deadline)
        if self.paired is not None:
            return
        log.info("conn %d: unpaired after %g s, ending the stream", self.session.conn_id, deadline)
        with contextlib.suppress(ConnectionError):
            await self.session.send_node(Node("xmlstreamend"))
        await self.session.close(hang_up=True)

    def close(self) -> None:
        self.session.world.withdraw_refs(self)
        self.session.world.withdraw_link_code(self)

    async def pair(self, phone: Phone, qr: QRPayload) -> LinkedDevice:
        """Link this connection's device to ``phone``; called when the phone scans its QR."""
        if qr.noise_key != self.session.client_noise_key or qr.identity_key != self.identity_key:
            raise UnknownQRError("QR keys do not match the connection that offered the ref")
        async with self._pairing:
            if self.paired is not None:
                raise UnknownQRError("this client has already been linked")
            return await self._pair(phone, qr.adv_secret)

    async def pair_with_code(self, phone: Phone, code: str) -> LinkedDevice:
        """Link this connection's device to ``phone`` once its user typed the pairing code."""
        async with self._pairing:
            if self.paired is not None:
                raise UnknownQRError("this client has already been linked")
            adv_secret = await self.link_code.adv_secret(phone, code)
            return await self._pair(phone, adv_secret)

    async def _pair(self, phone: Phone, adv_secret: bytes) -> LinkedDevice:
        session = self.session
        if phone.next_device > MAX_DEVICE_ID:
            raise PairingFailedError("the phone has no device ids left")
        device_id, key_index = phone.next_device, phone.next_key_index
        now = int(time.time())
        identity = build_device_identity(
            phone.account_key,
            adv_secret,
            self.identity_key,
            raw_id=secrets.randbits(32),
            key_index=key_index,
            timestamp=now,
        )
        device_jid = JID(phone.number, DEFAULT_SERVER, device=device_id)
        lid = JID(phone.lid_user, "lid", device=device_id)
        success = Node(
            "pair-success",
            {},
            [
                Node("device-identity", {}, identity.hmac_container),
                Node("platform", {"name": "android"}),
                Node("device", {"jid": device_jid, "lid": lid}),
            ],
        )
        iq_attrs: dict[str, AttrValue] = {
            "from": SERVER_JID,
            "id": session.new_iq_id(),
            "type": "set",
            "xmlns": "md",
            "t": str(now),  # sets the client's server-time offset (doc §6.3)
        }
        iq = Node("iq", iq_attrs, [success])
        try:
            async with asyncio.timeout(PAIR_REPLY_TIMEOUT):
                reply = await session.request(iq, chaos_point="pair_success")
        except (TimeoutError, ConnectionError) as exc:
            raise PairingFailedError("the client did not answer pair-success") from exc
        if reply.attr("type") != "result":
            error = reply.child("error")
            reason = error.attr("text") if error is not None else "unknown"
            raise PairingFailedError(f"the client refused pair-success: {reason}")
        signed = reply.child("pair-device-sign")
        signed_identity = signed.child("device-identity") if signed is not None else None
        if signed_identity is None:
            raise PairingFailedError("pair-device-sign is missing its device-identity")
        try:
            check_device_signature(
                signed_identity.data, identity, self.identity_key, phone.account_key.public
            )
        except DeviceSignatureError as exc:
            session.spawn(session.drop(), "drop-bad-signature")
            raise PairingFailedError(str(exc)) from exc
        phone.next_device += 1
        phone.next_key_index += 1
        device = LinkedDevice(
            number=phone.number,
            device=device_id,
            lid_user=phone.lid_user,
            identity_key=self.identity_key,
            noise_key=session.client_noise_key,
            registration_id=self.registration_id,
            platform="android",
            app_version=session.app_version,
        )
        session.world.link(device)
        self.paired = device
        self.close()
        log.info("conn %d: linked as device :%d", session.conn_id, device_id)
        if not await session.chaos_close("restart"):
            await self._restart(session.world.faults.after_pair)
        return device

    async def _restart(self, after_pair: AfterPair) -> None:
        """Ask the linked client to reconnect and log in (doc §6.4), as ``after_pair`` says.

        WhatsApp drops TCP right after the 515 (whatsmeow #1013: "failed to close WebSocket:
        failed to read frame header: EOF"). whatsmeow's handlePair already called
        expectDisconnect(), so a client that handles the close before the 515 logs "OnDisconnect()
        called, but it was expected" and never redials; close_without_515 forces that case.
        """
        session = self.session
        if after_pair != "close_without_515":
            log.info("conn %d: asking for a restart (515), then %s", session.conn_id, after_pair)
            with contextlib.suppress(ConnectionError):
                await session.send_node(Node("stream:error", {"code": "515"}))
        if after_pair == "linger":
            session.spawn(self._close_later(), "restart-close")
        else:
            await session.close(hang_up=True)

    async def _close_later(self) -> None:
        await asyncio.sleep(LINGER_CLOSE_AFTER)
        await self.session.close()

    async def on_md_iq(self, node: Node) -> None:
        """``md`` iqs from the client during registration: the pairing-code flow."""
        await self.link_code.on_iq(node)
