"""The server's answers to a client's iqs: keepalive, prekeys, passive, md (doc §7-§8), and
the device lists (usync) and prekey bundles a device asks for before it sends a message.

Replies are matched by id alone (doc §7). An iq whose namespace has no answer here gets a fast
501, which whatsmeow tolerates (it logs a warning instead of waiting 75 s).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from waqr.sim.node import Node, iq_error, iq_result
from waqr.sim.relay import prekey_fetch_answer, usync_answer
from waqr.sim.signal.errors import InvalidKey
from waqr.sim.signal.prekeys import parse_upload
from waqr.sim.state import UnknownDeviceError

if TYPE_CHECKING:
    from waqr.sim.server import Session

log = logging.getLogger("waqr.sim.server")

IqHandler = Callable[[Node], Awaitable[None]]


class ClientIqs:
    """The iq answers of one ``Session``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def handler(self, xmlns: str) -> IqHandler | None:
        """What answers an iq of this namespace on this connection, if anything does."""
        session = self.session
        if xmlns == "md":
            if session.registration is not None:
                return session.registration.on_md_iq
            return self._on_linked_md if session.device is not None else None
        handlers: dict[str, IqHandler] = {
            "w:p": self._on_ping,
            "encrypt": self._on_encrypt,
            "passive": self._on_passive,
            "usync": self._on_usync,
        }
        return handlers.get(xmlns)

    async def _on_linked_md(self, node: Node) -> None:
        """A linked device logging itself out: whatsmeow's Logout() sends
        ``<iq xmlns=md type=set><remove-companion-device jid=own reason=user_initiated/>``
        (client.go), then closes the socket and deletes its store."""
        session = self.session
        removal = node.child("remove-companion-device")
        device = session.device
        if removal is None or device is None:
            await session.send_node(iq_error(node, 501, "feature-not-implemented"))
            return
        with contextlib.suppress(UnknownDeviceError):
            session.world.unlink(device.jid)
        log.info("conn %d: device :%d unlinked itself", session.conn_id, device.jid.device)
        await session.send_node(iq_result(node))

    async def _on_ping(self, node: Node) -> None:
        if not self.session.world.faults.ignore_pings:
            await self.session.send_node(iq_result(node))

    async def _on_encrypt(self, node: Node) -> None:
        """Prekey count and upload (doc §7 steps 1-2); the count and the keys are kept per
        device, so that contacts can open Signal sessions with it."""
        session = self.session
        device = session.device
        if node.child("count") is not None:
            count = device.prekey_count if device is not None else 0
            await session.send_node(iq_result(node, [Node("count", {"value": str(count)})]))
            return
        if node.attr("type") == "get" and node.child("key") is not None:
            await session.send_node(prekey_fetch_answer(session.world, node))
            return
        key_list = node.child("list")
        if key_list is not None and device is not None:
            # whatsmeow uploads registration, identity and skey with the list; a bare list (the
            # fake client's) is only counted: it gives nothing a contact could start a session on.
            if node.child("identity") is not None and not self._keep_uploaded_keys(node):
                await session.send_node(iq_error(node, 400, "bad-request"))
                return
            device.prekey_count += len(key_list.children)
        await session.send_node(iq_result(node))

    def _keep_uploaded_keys(self, node: Node) -> bool:
        """Store a device's prekey upload for bundle fetches; False if it does not check out."""
        session = self.session
        device = session.device
        if device is None:
            return False
        try:
            uploaded = parse_upload(node)
        except InvalidKey as exc:
            log.warning("conn %d: refused a prekey upload: %s", session.conn_id, exc)
            return False
        previous = device.signal_keys
        if previous is not None and previous.identity_key == uploaded.identity_key:
            uploaded.one_time = {**previous.one_time, **uploaded.one_time}
        device.signal_keys = uploaded
        return True

    async def _on_usync(self, node: Node) -> None:
        session = self.session
        if session.device is None:
            await session.send_node(iq_error(node, 401, "not-authorized"))
            return
        await session.send_node(usync_answer(session.world, node, session.device))

    async def _on_passive(self, node: Node) -> None:
        session = self.session
        await session.send_node(iq_result(node))
        if await session.chaos_close("connected"):
            return
        # The client reports Connected after this reply; a planned stream error hits it then.
        if session.kind == "login" and node.child("active") is not None:
            fault = session.world.faults.take_stream_fault()
            if fault is not None:
                session.spawn(session.stream_error(fault.code, fault.conflict), "stream-fault")
