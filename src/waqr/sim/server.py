"""One client connection, as WhatsApp's chat server would run it (doc §3-§10).

``ConnectionHandler`` is the front door's frame handler. Per connection a ``Session``:
handshake -> ClientPayload -> either *registration* (send ``pair-device`` refs, wait for the phone
to scan, ``pair-success``, check ``pair-device-sign``, ``stream:error 515``) or *login*
(``<success>`` or ``<failure>``, then answer the post-login iqs and keepalive pings). The control
API reaches live sessions through ``World`` to pair, log out, or drop them. When the world's
fault plan holds ``chaos`` (``chaos.py``), frames are delayed, iqs left unanswered and
connections closed early, reproducibly for one seed; a ``black_hole`` silences one, still open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, Final

from waqr.sim.binary import BinaryError, Node, pack_frame, unpack_frame
from waqr.sim.blackhole import BlackHole
from waqr.sim.certs import ServerIdentity
from waqr.sim.chaos import ChaosPoint
from waqr.sim.frontdoor import FrameConn, FrameConnClosed
from waqr.sim.iqs import ClientIqs
from waqr.sim.node import JID, iq_error
from waqr.sim.registration import Registration
from waqr.sim.relay import deliver
from waqr.sim.state import LinkedDevice, Refusal, SessionKind, World
from waqr.waproto import proto
from waqr.waproto.noise import INTRO_HEADER, NoiseError, ServerHandshake, TransportCipher

log = logging.getLogger("waqr.sim.server")

HANDSHAKE_TIMEOUT: Final = 20.0  # the client itself gives up on ServerHello after 20 s (doc §3.3)
CLOSE_GRACE: Final = 1.0  # let the client read a stream:error/failure before we close (doc §9)


class Session:
    """A live client connection; the ``LiveSession`` the world and the phone talk to."""

    def __init__(self, conn: FrameConn, world: World, identity: ServerIdentity) -> None:
        self.conn = conn
        self.world = world
        self.identity = identity
        self.conn_id = world.new_conn_id()
        self.kind: SessionKind = "handshake"
        self.device_jid: JID | None = None
        self.device: LinkedDevice | None = None
        self.caught_up = False  # the device's offline queue was handed over (_hand_over_queue)
        self.registration: Registration | None = None
        self.client_noise_key = b""  # the client's static key, known after the handshake
        self.app_version = ""  # ClientPayload.userAgent.appVersion, as "2.3000.n"
        self.chaos_point: ChaosPoint | None = None  # where chaos will close this connection
        self._receive_cipher: TransportCipher | None = None
        self._send_cipher: TransportCipher | None = None
        self._send_lock = asyncio.Lock()
        self._pending: dict[str, asyncio.Future[Node]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._iq_counter = 0
        self._iqs = ClientIqs(self)
        self.black_hole = BlackHole(self, sleep=world.sleep)

    # -- what the world may do

    async def send_node(self, node: Node) -> None:
        async with self._send_lock:
            if not self._closed:
                await self._chaos_delay()  # under the lock: frames keep their order, as on TCP
            if self._send_cipher is None or self._closed:
                raise ConnectionError("session is not open")
            if self.black_hole.swallows_node():
                return  # never encrypted: the client's nonce counter stays in step for later
            try:
                await self.conn.send(self._send_cipher.encrypt(pack_frame(node)))
            except FrameConnClosed as exc:
                raise ConnectionError("client closed the connection") from exc

    async def request(self, node: Node, *, chaos_point: ChaosPoint | None = None) -> Node:
        """Send an iq and wait for the client's reply with the same id (caller bounds the wait).

        ``chaos_point`` names the moment right after the send, where chaos may close instead.
        """
        iq_id = node.attr("id")
        future: asyncio.Future[Node] = asyncio.get_running_loop().create_future()
        self._pending[iq_id] = future
        try:
            await self.send_node(node)
            if chaos_point is not None and await self.chaos_close(chaos_point):
                raise ConnectionError("the connection was closed before the reply")
            return await future
        finally:
            self._pending.pop(iq_id, None)

    def new_iq_id(self) -> str:
        self._iq_counter += 1
        return f"{self.conn_id}.{self._iq_counter}-sim"

    async def stream_error(self, code: int | None, conflict: str | None = None) -> None:
        """Send ``<stream:error>`` and close after a grace period (doc §9)."""
        children = [Node("conflict", {"type": conflict})] if conflict else None
        attrs = {"code": str(code)} if code is not None else {}
        await self._send_then_close(Node("stream:error", dict(attrs), children), CLOSE_GRACE)

    def replace(self) -> None:
        """A newer login of the same device took over: ``<conflict type="replaced"/>`` (doc §9)."""
        self.spawn(self.stream_error(None, "replaced"), "replaced")

    async def drop(self) -> None:
        """Close the socket with no stream:error: the client sees a plain disconnect."""
        await self.close()

    async def close(self, *, hang_up: bool = False) -> None:
        """Close the connection; ``hang_up`` drops it as WhatsApp does, with no close frame."""
        if not self._closed:
            self._closed = True
            self.world.detach(self)  # no longer live, even while the client takes its time
            await (self.conn.hang_up() if hang_up else self.conn.close())

    async def chaos_close(self, point: ChaosPoint) -> bool:
        """Close here if chaos picked this point for this connection; True when it did."""
        if self.chaos_point != point:
            return False
        log.info("conn %d (%s): chaos closes the connection at %s", self.conn_id, self.kind, point)
        await self.close(hang_up=True)
        return True

    async def _chaos_delay(self) -> None:
        chaos = self.world.faults.chaos
        if chaos is not None:
            await chaos.delay()

    def spawn(self, work: Awaitable[None], name: str) -> asyncio.Task[None]:
        """Run ``work`` in the background, held and logged (no silent task deaths)."""
        task = asyncio.ensure_future(work)
        task.set_name(f"sim-conn{self.conn_id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "conn %d: task %s failed", self.conn_id, task.get_name(), exc_info=task.exception()
            )

    async def _send_then_close(self, node: Node, grace: float) -> None:
        try:
            await self.send_node(node)
        except ConnectionError:
            return
        await asyncio.sleep(grace)
        await self.close()

    # -- the connection's life

    async def run(self) -> None:
        self.world.attach(self)
        try:
            payload = await asyncio.wait_for(self._handshake(), HANDSHAKE_TIMEOUT)
            if payload is not None and await self._start(payload):
                await self._read_loop()
        except (NoiseError, BinaryError, TimeoutError) as exc:
            log.info("conn %d: closing after protocol error: %s", self.conn_id, exc)
        except ConnectionError:
            pass
        except Exception:
            log.exception("conn %d: session failed", self.conn_id)
        finally:
            self.world.detach(self)
            if self.registration is not None:
                self.registration.close()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("client disconnected"))
            for task in list(self._tasks):
                task.cancel()
            await self.close()
            log.info("conn %d (%s): closed", self.conn_id, self.kind)

    async def _recv(self) -> bytes:
        try:
            return await self.conn.recv()
        except FrameConnClosed as exc:
            raise ConnectionError("client closed the connection") from exc

    async def _handshake(self) -> Any:
        if self.conn.prologue != INTRO_HEADER:
            log.info("conn %d: unexpected intro header, closing", self.conn_id)
            return None
        handshake = ServerHandshake(
            self.identity.static_key, self.identity.cert_chain, self.conn.prologue
        )
        server_hello = handshake.respond(await self._recv())
        try:
            await self._chaos_delay()
            await self.conn.send(server_hello)
        except FrameConnClosed as exc:
            raise ConnectionError("client closed the connection") from exc
        result = handshake.finish(await self._recv())
        self._receive_cipher = result.receive
        self._send_cipher = result.send
        self.client_noise_key = result.client_noise_key
        payload = proto.ClientPayload()
        try:
            payload.ParseFromString(result.client_payload)
        except Exception as exc:  # protobuf's DecodeError
            raise NoiseError("ClientPayload does not parse") from exc
        return payload

    async def _start(self, payload: Any) -> bool:
        """Registration or login; False when the connection should end right away."""
        version = payload.userAgent.appVersion
        self.app_version = f"{version.primary}.{version.secondary}.{version.tertiary}"
        if payload.HasField("devicePairingData"):
            self.kind = "registration"
        elif payload.HasField("username"):
            self.kind = "login"
        else:
            log.info("conn %d: ClientPayload is neither registration nor login", self.conn_id)
            return False
        chaos = self.world.faults.chaos
        if chaos is not None:
            self.chaos_point = chaos.close_point(registration=self.kind == "registration")
        if await self.chaos_close("handshake"):
            return False
        if self.kind == "login":
            return await self._login(payload)
        refusal = self.world.faults.take_refusal("registration")
        if refusal is not None:
            await self._refuse(refusal)
            return False
        self.registration = Registration(self, payload.devicePairingData)
        return await self.registration.start()

    async def _refuse(self, refusal: Refusal) -> None:
        log.info("conn %d: refusing %s with failure %d", self.conn_id, self.kind, refusal.reason)
        await self._send_then_close(refusal.node(), CLOSE_GRACE)

    async def _login(self, payload: Any) -> bool:
        number, device_id = str(payload.username), int(payload.device)
        refusal = self.world.faults.take_refusal("login")
        device = self.world.device(number, device_id)
        if refusal is None and (device is None or device.noise_key != self.client_noise_key):
            refusal = Refusal(401)  # unknown or unlinked device: logged out (doc §10)
        if refusal is not None or device is None:
            await self._refuse(refusal or Refusal(401))
            return False
        # One live session per device, as on WhatsApp: the older one is told it was replaced.
        for older in self.world.sessions_of(device.jid):
            older.replace()
        self.device = device
        self.device_jid = device.jid
        device.app_version = self.app_version
        await self.send_node(Node("success", {"t": str(int(time.time())), "lid": device.lid}))
        log.info("conn %d: device :%d logged in", self.conn_id, device_id)
        await self._hand_over_queue(device.jid)
        self.black_hole.after_login(self.world.faults.black_hole)
        return not await self.chaos_close("success")

    async def _hand_over_queue(self, device: JID) -> None:
        """The device's offline queue, oldest first, each stanza marked ``offline``; then
        ``<ib><offline count=N/></ib>`` (wa-server-behaviour.md "After login"; whatsmeow
        connectionevents.go handleIB emits OfflineSyncCompleted from it), with N=0 too.
        Messages stay queued until the device acknowledges them: if this socket fails, or the
        client dies before its receipt, they are handed over again at the next login."""
        handed: list[Node] = []
        while pending := [
            n for n in self.world.queued_for(device) if all(n is not h for h in handed)
        ]:
            for node in pending:  # what arrives meanwhile is queued, and picked up next round
                await self.send_node(_marked_offline(node))
                handed.append(node)
                if node.tag != "message":
                    self.world.unqueue(device, node)
        # No await between the last look at the queue and here: nothing can slip in between.
        self.caught_up = True
        count = str(len(handed))
        await self.send_node(Node("ib", content=[Node("offline", {"count": count})]))

    async def _read_loop(self) -> None:
        receive = self._receive_cipher
        if receive is None:
            raise ConnectionError("no transport keys: the handshake did not finish")
        while True:
            frame = await self._recv()
            try:
                plaintext = receive.decrypt(frame)  # in a black hole too: nonces stay in step
            except NoiseError:
                log.warning("conn %d: dropped a frame that failed to decrypt", self.conn_id)
                continue
            if not self.black_hole.swallows_frame():
                await self._dispatch(unpack_frame(plaintext))

    async def _dispatch(self, node: Node) -> None:
        if node.tag == "message" and self.device_jid is not None:
            for reply in await deliver(self.world, node, self.device_jid):
                await self.send_node(reply)
            return
        if node.tag in ("receipt", "ack"):
            self.world.from_devices.append((node.tag, node.attr("id"), node.attr("type")))
            acknowledged = _acknowledged_ids(node)
            if acknowledged and self.device_jid is not None:
                self.world.settle(self.device_jid, acknowledged)
        if node.tag != "iq":
            return  # ack, ib, receipt, presence...: nothing to answer (doc §7)
        iq_type = node.attr("type")
        if iq_type in ("result", "error"):
            future = self._pending.get(node.attr("id"))
            if future is not None and not future.done():
                future.set_result(node)
            return
        log.debug("conn %d: iq %s %s", self.conn_id, iq_type, node.attr("xmlns"))
        chaos = self.world.faults.chaos
        if chaos is not None and chaos.drops_ack():
            log.info("conn %d: chaos leaves an iq %s unanswered", self.conn_id, node.attr("xmlns"))
            return
        handler = self._iqs.handler(node.attr("xmlns"))
        if handler is not None:
            await handler(node)
        else:
            await self.send_node(iq_error(node, 501, "feature-not-implemented"))


# Receipts by which a device says it has a message (whatsmeow receipt.go sendMessageReceipt:
# none for delivered, "inactive" when it sends no presence, "sender"/"peer_msg" for its own
# account's). "retry" (could not decrypt) and "read" do not take a message off the queue.
_DELIVERY_RECEIPTS: Final = frozenset({"", "inactive", "sender", "peer_msg"})


def _acknowledged_ids(node: Node) -> list[str]:
    """The message ids a device's ``<receipt>`` or ``<ack class="message">`` acknowledges:
    whatsmeow sends a delivery receipt once its handler returned, and an ack instead for a
    message it could not decrypt or parse (message.go decryptMessages)."""
    if node.tag == "ack":
        return [node.attr("id")] if node.attr("class") == "message" else []
    if node.attr("type") not in _DELIVERY_RECEIPTS:
        return []
    items = node.child("list")
    return [node.attr("id")] + [item.attr("id") for item in (items.children if items else [])]


def _marked_offline(node: Node) -> Node:
    """A queued stanza as handed over at login: with ``offline`` (Baileys messages-recv reads
    its presence as "from the offline queue"; WhatsApp Web parses it as an integer; whatsmeow
    does not read it). The queued node itself is left as it was."""
    return Node(node.tag, {**node.attrs, "offline": "1"}, node.content)


class ConnectionHandler:
    """The frame handler given to the front door: one ``Session`` per connection."""

    def __init__(self, world: World, identity: ServerIdentity) -> None:
        self.world = world
        self.identity = identity

    async def __call__(self, conn: FrameConn) -> None:
        await Session(conn, self.world, self.identity).run()
