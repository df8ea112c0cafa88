"""A small WhatsApp *client* for the simulator's tests: Noise initiator, cert checks, transport.

It mirrors what whatsmeow does on its side (doc §3): the checks in ``verify_chain`` are the ones
the real client makes in ``verifyServerCert``, so a chain this accepts is one neonize accepts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from waqr.sim.binary import JID, SERVER_JID, Node, pack_frame, unpack_frame
from waqr.sim.certs import ServerIdentity
from waqr.sim.frontdoor import FrameConnClosed
from waqr.sim.pairing import parse_qr
from waqr.sim.server import ConnectionHandler
from waqr.sim.state import LinkedDevice, World
from waqr.waproto import proto, xeddsa
from waqr.waproto.noise import INTRO_HEADER, SymmetricState, TransportCipher, dh

RECV_TIMEOUT = 5.0  # every wait in these tests is bounded


class ChainRejected(Exception):
    """The server's certificate chain fails one of the client's checks."""


def verify_chain(chain_bytes: bytes, root_public: bytes, server_static: bytes) -> None:
    """The client's checks, in its order (doc §3.5)."""
    chain = proto.CertChain()
    chain.ParseFromString(chain_bytes)
    leaf, intermediate = chain.leaf, chain.intermediate
    for cert in (leaf, intermediate):
        if not cert.details or len(cert.signature) != 64:
            raise ChainRejected("missing details or signature of the wrong size")
    if not xeddsa.verify(root_public, intermediate.details, intermediate.signature):
        raise ChainRejected("intermediate not signed by the root")
    inter = proto.CertChain.NoiseCertificate.Details()
    inter.ParseFromString(intermediate.details)
    if inter.issuerSerial != 0 or len(inter.key) != 32:
        raise ChainRejected("intermediate issuer serial or key size")
    if not xeddsa.verify(inter.key, leaf.details, leaf.signature):
        raise ChainRejected("leaf not signed by the intermediate")
    now = int(time.time())
    leaf_details = proto.CertChain.NoiseCertificate.Details()
    leaf_details.ParseFromString(leaf.details)
    for details in (inter, leaf_details):
        if not details.notBefore <= now <= details.notAfter:
            raise ChainRejected("certificate outside its validity window")
    if leaf_details.issuerSerial != inter.serial:
        raise ChainRejected("leaf issuer serial")
    if leaf_details.key != server_static:
        raise ChainRejected("leaf key is not the server's static key")


class NoiseInitiator:
    """Client side of the handshake, then the transport."""

    def __init__(self, root_public: bytes, noise_key: X25519PrivateKey | None = None) -> None:
        self.root_public = root_public
        self.noise_key = noise_key or X25519PrivateKey.generate()
        self._ephemeral = X25519PrivateKey.generate()
        self._state = SymmetricState(INTRO_HEADER)
        self.send_cipher: TransportCipher | None = None
        self.recv_cipher: TransportCipher | None = None

    @property
    def noise_public(self) -> bytes:
        return self.noise_key.public_key().public_bytes_raw()

    def client_hello(self) -> bytes:
        ephemeral = self._ephemeral.public_key().public_bytes_raw()
        self._state.mix_hash(ephemeral)
        message = proto.HandshakeMessage()
        message.clientHello.ephemeral = ephemeral
        return bytes(message.SerializeToString())

    def client_finish(self, server_hello_frame: bytes, payload: Any) -> bytes:
        """Check the ServerHello, return the ClientFinish frame carrying ``payload``."""
        message = proto.HandshakeMessage()
        message.ParseFromString(server_hello_frame)
        hello = message.serverHello
        state = self._state
        state.mix_hash(hello.ephemeral)
        state.mix_key(dh(self._ephemeral, hello.ephemeral))
        server_static = state.decrypt(hello.static)
        state.mix_key(dh(self._ephemeral, server_static))
        verify_chain(state.decrypt(hello.payload), self.root_public, server_static)
        finish = proto.HandshakeMessage()
        finish.clientFinish.static = state.encrypt(self.noise_public)
        state.mix_key(dh(self.noise_key, hello.ephemeral))
        finish.clientFinish.payload = state.encrypt(payload.SerializeToString())
        send_key, recv_key = state.split()
        self.send_cipher, self.recv_cipher = TransportCipher(send_key), TransportCipher(recv_key)
        return bytes(finish.SerializeToString())

    def seal(self, node: Node) -> bytes:
        assert self.send_cipher is not None
        return self.send_cipher.encrypt(pack_frame(node))

    def open(self, frame: bytes) -> Node:
        assert self.recv_cipher is not None
        return unpack_frame(self.recv_cipher.decrypt(frame))


# ------------------------------------------------------------------ a whole fake device


class MemoryConnClosed(FrameConnClosed):
    pass


class MemoryConn:
    """An in-memory ``FrameConn``: the server's end, with client-side helpers."""

    def __init__(self, prologue: bytes = INTRO_HEADER) -> None:
        self.prologue = prologue
        self._to_server: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._to_client: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        self.hung_up = False

    async def recv(self) -> bytes:
        item = await self._to_server.get()
        if item is None:
            raise MemoryConnClosed
        return item

    async def send(self, payload: bytes) -> None:
        if self.closed:
            raise MemoryConnClosed
        self._to_client.put_nowait(payload)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._to_server.put_nowait(None)
            self._to_client.put_nowait(None)

    async def hang_up(self) -> None:
        self.hung_up = True  # the server dropped the stream instead of closing it politely
        await self.close()

    # client side
    def client_send(self, payload: bytes) -> None:
        self._to_server.put_nowait(payload)

    async def client_recv(self) -> bytes | None:
        return await self._to_client.get()

    def client_close(self) -> None:
        """The client goes away (killed, or its network dropped): the server reads the end."""
        self._to_server.put_nowait(None)


class FakeDevice:
    """What whatsmeow keeps in its store: noise key, identity key, ADV secret, and later its JID."""

    def __init__(self) -> None:
        self.noise_key = X25519PrivateKey.generate()
        self.identity = xeddsa.SigningKey.generate()
        self.adv_secret = os.urandom(32)
        self.registration_id = 4242
        self.signed_prekey = os.urandom(32)
        self.jid: JID | None = None
        self.lid: JID | None = None

    def registration_payload(self) -> Any:
        payload = proto.ClientPayload()
        data = payload.devicePairingData
        data.eRegid = self.registration_id.to_bytes(4, "big")
        data.eKeytype = b"\x05"
        data.eIdent = self.identity.public
        data.eSkeyID = b"\x00\x00\x01"
        data.eSkeyVal = self.signed_prekey
        data.eSkeySig = self.identity.sign(b"\x05" + self.signed_prekey)
        data.buildHash = hashlib.md5(b"2.3000.1047769893").digest()  # noqa: S324 - protocol fact
        payload.passive = False
        return payload

    def login_payload(self) -> Any:
        assert self.jid is not None
        payload = proto.ClientPayload()
        payload.username = int(self.jid.user)
        payload.device = self.jid.device
        payload.passive = True
        payload.pull = True
        return payload

    def qr_string(self, ref: str) -> str:
        fields = [ref] + [
            base64.b64encode(k).decode()
            for k in (
                self.noise_key.public_key().public_bytes_raw(),
                self.identity.public,
                self.adv_secret,
            )
        ]
        return "https://wa.me/settings/linked_devices#" + ",".join(fields) + ",6"

    def answer_pair_success(self, iq: Node, *, corrupt_signature: bool = False) -> Node:
        """What whatsmeow's handlePair does: check HMAC and account signature, sign, reply."""
        success = iq.child("pair-success")
        assert success is not None
        identity_node, device_node = success.child("device-identity"), success.child("device")
        assert identity_node is not None and device_node is not None
        container = proto.ADVSignedDeviceIdentityHMAC()
        container.ParseFromString(identity_node.data)
        expected = hmac.digest(self.adv_secret, container.details, hashlib.sha256)
        if not hmac.compare_digest(expected, container.HMAC):
            return _pair_error(iq, 401, "hmac-mismatch")
        signed = proto.ADVSignedDeviceIdentity()
        signed.ParseFromString(container.details)
        message = b"\x06\x00" + signed.details + self.identity.public
        if not xeddsa.verify(signed.accountSignatureKey, message, signed.accountSignature):
            return _pair_error(iq, 401, "signature-mismatch")
        device_message = (
            b"\x06\x01" + signed.details + self.identity.public + signed.accountSignatureKey
        )
        signature = self.identity.sign(device_message)
        if corrupt_signature:
            signature = bytes(64)
        signed.deviceSignature = signature
        signed.ClearField("accountSignatureKey")
        details = proto.ADVDeviceIdentity()
        details.ParseFromString(signed.details)
        self.jid, self.lid = device_node.jid("jid"), device_node.jid("lid")
        sign = Node(
            "device-identity",
            {"key-index": str(details.keyIndex)},
            bytes(signed.SerializeToString()),
        )
        return Node(
            "iq",
            {"to": SERVER_JID, "type": "result", "id": iq.attr("id")},
            [Node("pair-device-sign", {}, [sign])],
        )


def _pair_error(iq: Node, code: int, text: str) -> Node:
    return Node(
        "iq",
        {"to": SERVER_JID, "type": "error", "id": iq.attr("id")},
        [Node("error", {"code": str(code), "text": text})],
    )


class ClientLink:
    """One client connection over a ``MemoryConn``: handshake, then node exchange."""

    def __init__(self, conn: MemoryConn, root_public: bytes, device: FakeDevice) -> None:
        self.conn = conn
        self.noise = NoiseInitiator(root_public, device.noise_key)
        self.unsolicited: list[Node] = []  # what ``query`` passed over on its way to a reply
        self.offline: list[Node] = []  # what the server held for the device, given at login

    async def handshake(self, payload: Any) -> None:
        self.conn.client_send(self.noise.client_hello())
        hello = await self.conn.client_recv()
        assert hello is not None
        self.conn.client_send(self.noise.client_finish(hello, payload))

    def send(self, node: Node) -> None:
        self.conn.client_send(self.noise.seal(node))

    async def recv(self) -> Node | None:
        """Next node, or None once the server has closed the connection."""
        async with asyncio.timeout(RECV_TIMEOUT):
            frame = await self.conn.client_recv()
        return None if frame is None else self.noise.open(frame)

    async def catch_up(self) -> None:
        """Read what the server hands over after login, up to its ``<ib><offline count/>``."""
        while (node := await self.recv()) is not None:
            offline = node.child("offline") if node.tag == "ib" else None
            if offline is not None:
                assert offline.attr("count") == str(len(self.offline))
                return
            self.offline.append(node)
        raise AssertionError("the server closed before <ib><offline/></ib>")

    async def query(self, node: Node) -> Node:
        """Send an iq and return its reply; what comes first that is not an iq reply (the
        ``<ib>`` after login, queued stanzas) is kept in ``unsolicited``, as a client handles
        it on its own."""
        self.send(node)
        while (reply := await self.recv()) is not None and reply.tag != "iq":
            self.unsolicited.append(reply)
        assert reply is not None and reply.attr("id") == node.attr("id")
        return reply


ConnectFactory = Callable[[FakeDevice], ClientLink]  # the ``connect`` fixture's type


def client_iq(iq_id: str, xmlns: str, iq_type: str, children: list[Node] | None = None) -> Node:
    """An iq as the client sends it to the server."""
    return Node("iq", {"id": iq_id, "xmlns": xmlns, "type": iq_type, "to": SERVER_JID}, children)


async def register(link: ClientLink, device: FakeDevice) -> list[str]:
    """Open a registration connection and ack its pair-device, as whatsmeow does (doc §6.1)."""
    await link.handshake(device.registration_payload())
    iq = await link.recv()
    assert iq is not None
    assert iq.tag == "iq" and iq.jid("from") == SERVER_JID
    assert iq.attr("type") == "set" and iq.attr("xmlns") == "md"
    pair_device = iq.child("pair-device")
    assert pair_device is not None
    link.send(Node("iq", {"to": SERVER_JID, "id": iq.attr("id"), "type": "result"}))
    return [ref.data.decode() for ref in pair_device.children]


async def scan_and_answer(
    world: World, link: ClientLink, device: FakeDevice, qr: str, **answer: bool
) -> LinkedDevice | BaseException:
    """The phone scans ``qr`` and the client answers pair-success; the scan's outcome."""
    scan = asyncio.create_task(world.scan(parse_qr(qr)))
    pair_success = await link.recv()
    assert pair_success is not None and pair_success.child("pair-success") is not None
    link.send(device.answer_pair_success(pair_success, **answer))
    result = await asyncio.gather(scan, return_exceptions=True)
    return result[0]


async def paired_device(connect: ConnectFactory, world: World) -> FakeDevice:
    """A device the phone has linked by scanning its first QR."""
    device = FakeDevice()
    link = connect(device)
    refs = await register(link, device)
    linked = await scan_and_answer(world, link, device, device.qr_string(refs[0]))
    assert isinstance(linked, LinkedDevice)
    return device


async def login(connect: ConnectFactory, device: FakeDevice) -> tuple[ClientLink, Node | None]:
    """A login connection of a linked device, and the server's first node (None: closed).
    After ``<success>`` it reads on to ``<ib><offline/></ib>``, as whatsmeow's OfflineSync
    does: what the server held for the device is then in ``link.offline``."""
    link = connect(device)
    await link.handshake(device.login_payload())
    first = await link.recv()
    if first is not None and first.tag == "success":
        await link.catch_up()
    return link, first


@contextlib.asynccontextmanager
async def in_memory_server(world: World, identity: ServerIdentity) -> AsyncIterator[ConnectFactory]:
    """Open in-memory connections served by the real handler; all closed at the end."""
    handler = ConnectionHandler(world, identity)
    served: list[tuple[MemoryConn, asyncio.Task[None]]] = []

    def open_link(device: FakeDevice) -> ClientLink:
        conn = MemoryConn()
        served.append((conn, asyncio.create_task(handler(conn))))
        return ClientLink(conn, identity.root_public_key, device)

    try:
        yield open_link
    finally:
        for conn, task in served:
            await conn.close()
            async with asyncio.timeout(5):
                await task


async def post_faults(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST /faults to the control API; the view it answers (which must be a 200)."""
    response = await api.post("/faults", json=body)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view
