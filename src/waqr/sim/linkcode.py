"""Linking with a pairing code instead of a QR: the server's and phone's side of the exchange.

Flow (whatsmeow ``pair-code.go``, facts only):
1. client iq ``md``/``link_code_companion_reg stage=companion_hello``: its ephemeral key wrapped
   with the 8-character code, its noise key, the phone number typed into the bot -> we answer
   with a ``link_code_pairing_ref``.
2. the phone's user types the code (``POST /phone/pair-code``): the phone unwraps the client's
   ephemeral key and sends ``<notification type=link_code_companion_reg>`` with its own wrapped
   ephemeral key and its identity key.
3. client iq ``stage=companion_finish``: a key bundle (its identity, the phone's identity, 32
   random bytes) sealed under the ephemeral DH secret -> both sides derive the ADV secret, and
   pairing continues exactly as after a QR scan (pair-success, HMAC keyed by that secret).
The cryptography of each step lives in ``paircode.py``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from waqr.sim import paircode
from waqr.sim.node import SERVER_JID, AttrValue, Node, iq_error, iq_result
from waqr.sim.state import PairingFailedError, Phone, UnknownQRError

if TYPE_CHECKING:
    from waqr.sim.registration import Registration

log = logging.getLogger("waqr.sim.linkcode")

FINISH_TIMEOUT: Final = 30.0  # the client answers as soon as it has run 131072 PBKDF2 rounds
TAG: Final = paircode.TAG


@dataclass
class CompanionHello:
    """What the client sent when it asked for a pairing code."""

    phone_number: str
    wrapped_ephemeral: bytes = field(repr=False)
    pairing_ref: bytes = field(repr=False)


class LinkCodeExchange:
    """The pairing-code state of one registration connection."""

    def __init__(self, registration: Registration) -> None:
        self.registration = registration
        self.hello: CompanionHello | None = None
        self._finish: asyncio.Future[Node] | None = None

    async def on_iq(self, node: Node) -> None:
        session = self.registration.session
        request = node.child(TAG)
        stage = request.attr("stage") if request is not None else ""
        if request is not None and stage == "companion_hello":
            await self._on_hello(node, request)
        elif request is not None and stage == "companion_finish":
            if self._finish is None or self._finish.done():
                await session.send_node(iq_error(node, 400, "bad-request"))
                return
            self._finish.set_result(request)
            await session.send_node(iq_result(node))
        else:
            await session.send_node(iq_error(node, 501, "feature-not-implemented"))

    async def _on_hello(self, node: Node, request: Node) -> None:
        session = self.registration.session
        jid = request.jid("jid")
        wrapped = request.child("link_code_pairing_wrapped_companion_ephemeral_pub")
        noise = request.child("companion_server_auth_key_pub")
        if (
            jid is None
            or wrapped is None
            or len(wrapped.data) != paircode.WRAPPED_KEY_SIZE
            or noise is None
            or noise.data != session.client_noise_key
        ):
            await session.send_node(iq_error(node, 400, "bad-request"))
            return
        ref = secrets.token_urlsafe(24).encode()
        self.hello = CompanionHello(jid.user, wrapped.data, ref)
        session.world.await_link_code(jid.user, self.registration)
        reply = Node(TAG, {}, [Node("link_code_pairing_ref", {}, ref)])
        await session.send_node(iq_result(node, [reply]))
        log.info("conn %d: client asked for a pairing code", session.conn_id)

    async def adv_secret(self, phone: Phone, code: str) -> bytes:
        """Run steps 2-3 for the code the user typed; the ADV secret both sides now share."""
        hello, session = self.hello, self.registration.session
        if hello is None or hello.phone_number != phone.number:
            raise UnknownQRError("this client did not ask for a code for that phone")
        try:
            # PBKDF2 with 131072 rounds: off the event loop.
            primary = await asyncio.to_thread(paircode.primary_hello, code, hello.wrapped_ephemeral)
        except paircode.PairCodeError as exc:
            raise PairingFailedError(f"pairing code refused: {exc}") from exc
        self._finish = asyncio.get_running_loop().create_future()
        stage = Node(
            TAG,
            {"stage": "primary_hello"},
            [
                Node("link_code_pairing_ref", {}, hello.pairing_ref),
                Node(
                    "link_code_pairing_wrapped_primary_ephemeral_pub",
                    {},
                    primary.wrapped_primary_ephemeral,
                ),
                Node("primary_identity_pub", {}, phone.account_key.public),
            ],
        )
        attrs: dict[str, AttrValue] = {
            "from": SERVER_JID,
            "id": session.new_iq_id(),
            "type": TAG,
            "t": str(int(time.time())),
        }
        await session.send_node(Node("notification", attrs, [stage]))
        try:
            async with asyncio.timeout(FINISH_TIMEOUT):
                finish = await self._finish
        except TimeoutError as exc:
            raise PairingFailedError("the client did not finish the code exchange") from exc
        bundle = finish.child("link_code_pairing_wrapped_key_bundle")
        ref = finish.child("link_code_pairing_ref")
        if bundle is None or ref is None or ref.data != hello.pairing_ref:
            raise PairingFailedError("companion_finish is incomplete")
        try:
            return paircode.companion_finish(
                primary,
                bundle.data,
                primary_identity=phone.account_key.x25519_private(),
                companion_identity=self.registration.identity_key,
            )
        except paircode.PairCodeError as exc:
            raise PairingFailedError(str(exc)) from exc
