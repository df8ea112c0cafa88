"""The front door as a client sees it: proxy, TLS, websocket, frames, and each network fault.

Every test talks to the real listeners on loopback with a real TLS + websocket client; the last
ones run the real neonize engine (in a child process) through it.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.sim._frontdoor_helpers import (
    INTRO,
    STEP,
    ProxyRefusedError,
    RecordingHandler,
    client_tls_context,
    frame,
    open_tunnel,
    websocket,
)
from waqr.sim import tls
from waqr.sim.frontdoor import FrameConn, FrontDoor, FrontDoorFault

pytestmark = pytest.mark.timeout(60)

PROBE = Path(__file__).with_name("_frontdoor_helpers.py")


@pytest.fixture
def recorder() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
async def door(tmp_path: Path, recorder: RecordingHandler) -> AsyncIterator[FrontDoor]:
    front_door = FrontDoor(recorder, state_dir=tmp_path / "sim")
    await front_door.start()
    yield front_door
    await front_door.stop()


def with_credentials(url: str, user: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest}"


def client_hello_bytes() -> bytes:
    """A genuine TLS ClientHello for web.whatsapp.com, made without a socket."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_object = ssl.create_default_context().wrap_bio(
        incoming, outgoing, server_hostname="web.whatsapp.com"
    )
    with pytest.raises(ssl.SSLWantReadError):
        tls_object.do_handshake()
    return outgoing.read()


# -- the happy path --------------------------------------------------------------------------


@pytest.mark.parametrize("proxy", ["http", "socks5"])
async def test_frames_reach_the_handler_with_the_intro_stripped_and_reassembled(
    door: FrontDoor, recorder: RecordingHandler, proxy: str
) -> None:
    url = door.proxy_url if proxy == "http" else door.socks_url
    async with websocket(url, door.ca_cert_path) as ws:
        await ws.send(INTRO + frame(b"client hello"))
        assert await recorder.next_frame() == b"client hello"
        assert await ws.recv() == frame(b"client hello")  # sent back with its 3-byte length

        await ws.send(frame(b"one") + frame(b"two"))  # two frames in one message
        assert [await recorder.next_frame(), await recorder.next_frame()] == [b"one", b"two"]

        split = frame(b"split across messages")
        for part in (split[:2], split[2:9], split[9:]):
            await ws.send(part)
        assert await recorder.next_frame() == b"split across messages"
        await ws.send("text messages are skipped")
        await ws.send(frame(b""))
        assert await recorder.next_frame() == b""
    assert recorder.prologues == [INTRO]


async def test_the_handler_learns_when_the_client_goes_away(
    door: FrontDoor, recorder: RecordingHandler
) -> None:
    async with websocket(door.proxy_url, door.ca_cert_path) as ws:
        await ws.send(INTRO + frame(b"x"))
        await recorder.next_frame()
    async with asyncio.timeout(STEP):
        while not recorder.closed:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("hang_up", [True, False])
async def test_a_hang_up_delivers_what_was_sent_then_ends_with_no_close_frame(
    tmp_path: Path, hang_up: bool
) -> None:
    """WhatsApp drops the stream after a 515 (whatsmeow #1013 logs "failed to read frame
    header: EOF"); ``close`` is the polite WebSocket close handshake."""

    async def last_words(conn: FrameConn) -> None:
        await conn.recv()
        await conn.send(b"last words")
        await (conn.hang_up() if hang_up else conn.close())

    door = FrontDoor(last_words, state_dir=tmp_path / "sim")
    await door.start()
    try:
        async with websocket(door.proxy_url, door.ca_cert_path) as ws:
            await ws.send(INTRO + frame(b"hello"))
            assert await ws.recv() == frame(b"last words")
            with pytest.raises(ConnectionClosed) as ended:
                async with asyncio.timeout(STEP):
                    await ws.recv()
        close_frame = ended.value.rcvd
        if hang_up:
            assert close_frame is None
        else:
            assert close_frame is not None and close_frame.code == 1000
    finally:
        await door.stop()


async def test_only_the_chat_path_with_the_web_origin_is_upgraded(door: FrontDoor) -> None:
    with pytest.raises(InvalidStatus) as wrong_path:
        async with websocket(door.proxy_url, door.ca_cert_path, path="/ws/other"):
            pass
    assert wrong_path.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as wrong_origin:
        async with websocket(door.proxy_url, door.ca_cert_path, origin="https://evil.example"):
            pass
    assert wrong_origin.value.response.status_code == 403


async def test_the_proxy_only_speaks_connect(door: FrontDoor) -> None:
    url = urlsplit(door.proxy_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(b"GET http://web.whatsapp.com/ HTTP/1.1\r\nHost: web.whatsapp.com\r\n\r\n")
        async with asyncio.timeout(STEP):
            status = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    assert status.startswith(b"HTTP/1.1 405")


async def test_proxy_credentials_are_required_when_configured(
    tmp_path: Path, recorder: RecordingHandler
) -> None:
    door = FrontDoor(recorder, state_dir=tmp_path, proxy_auth=("bot", "s3cret"))
    await door.start()
    try:
        for url in (door.proxy_url, with_credentials(door.proxy_url, "bot", "wrong")):
            with pytest.raises(ProxyRefusedError, match="407 Proxy Authentication Required"):
                (await open_tunnel(url)).close()
        with pytest.raises(ProxyRefusedError, match="SOCKS5"):
            (await open_tunnel(with_credentials(door.socks_url, "bot", "wrong"))).close()
        with pytest.raises(ProxyRefusedError, match="SOCKS5 method 0xff"):
            (await open_tunnel(door.socks_url)).close()  # offers no-auth only
        for url in (door.proxy_url, door.socks_url):
            async with websocket(with_credentials(url, "bot", "s3cret"), door.ca_cert_path) as ws:
                await ws.send(INTRO + frame(b"authorised"))
                assert await recorder.next_frame() == b"authorised"
    finally:
        await door.stop()


# -- faults, each as a real client meets it ----------------------------------------------------


async def test_refused_tcp_closes_the_listeners_and_reopens_them_on_the_same_ports(
    door: FrontDoor, recorder: RecordingHandler
) -> None:
    door.fault = FrontDoorFault.REFUSE_TCP  # the setter alone takes effect at once
    for url in (door.proxy_url, door.socks_url):
        with pytest.raises(ConnectionRefusedError):
            (await open_tunnel(url)).close()

    door.fault = FrontDoorFault.NONE  # bound again before the setter returns
    async with websocket(door.proxy_url, door.ca_cert_path) as ws:
        await ws.send(INTRO + frame(b"back"))
        assert await recorder.next_frame() == b"back"
    async with websocket(door.socks_url, door.ca_cert_path) as ws:
        await ws.send(INTRO + frame(b"socks too"))
        assert await recorder.next_frame() == b"socks too"


async def test_refused_tcp_set_before_start_still_gives_the_door_its_ports(
    tmp_path: Path, recorder: RecordingHandler
) -> None:
    door = FrontDoor(recorder, state_dir=tmp_path)
    door.fault = FrontDoorFault.REFUSE_TCP
    await door.start()
    try:
        assert not door.proxy_url.endswith(":0")
        with pytest.raises(ConnectionRefusedError):
            (await open_tunnel(door.proxy_url)).close()
        await door.set_fault(FrontDoorFault.NONE)
        (await open_tunnel(door.proxy_url)).close()
    finally:
        await door.stop()


@pytest.mark.parametrize("proxy", ["http", "socks5"])
async def test_close_after_connect_ends_the_tls_handshake_with_eof(
    door: FrontDoor, recorder: RecordingHandler, proxy: str
) -> None:
    await door.set_fault(FrontDoorFault.CLOSE_AFTER_CONNECT)
    url = door.proxy_url if proxy == "http" else door.socks_url
    with pytest.raises((ConnectionError, ssl.SSLError, EOFError)):
        async with websocket(url, door.ca_cert_path):
            pass
    assert recorder.prologues == []


async def test_untrusted_tls_presents_a_certificate_from_another_authority(
    door: FrontDoor, recorder: RecordingHandler
) -> None:
    await door.set_fault(FrontDoorFault.UNTRUSTED_TLS)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        async with websocket(door.proxy_url, door.ca_cert_path):
            pass
    # It is a well-formed certificate for web.whatsapp.com, only signed by a stranger CA.
    sock = await open_tunnel(door.proxy_url)
    reader, writer = await asyncio.open_connection(
        sock=sock,
        ssl=client_tls_context(door.tls.untrusted.ca_cert_path),
        server_hostname="web.whatsapp.com",
    )
    writer.close()
    await writer.wait_closed()


async def test_forbidden_websocket_upgrade_is_answered_403(door: FrontDoor) -> None:
    await door.set_fault(FrontDoorFault.WS_FORBIDDEN)
    with pytest.raises(InvalidStatus) as refused:
        async with websocket(door.proxy_url, door.ca_cert_path):
            pass
    assert refused.value.response.status_code == 403


async def test_silence_after_client_hello_keeps_the_socket_open_without_answering(
    door: FrontDoor,
) -> None:
    await door.set_fault(FrontDoorFault.SILENT_AFTER_CLIENT_HELLO)
    sock = await open_tunnel(door.proxy_url)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(sock, client_hello_bytes())
        with pytest.raises(TimeoutError):  # neither a ServerHello nor an EOF arrives
            await asyncio.wait_for(loop.sock_recv(sock, 1), timeout=0.5)
    finally:
        sock.close()
    with pytest.raises(TimeoutError):  # a TLS client gives up on its own
        async with websocket(door.proxy_url, door.ca_cert_path, open_timeout=0.5):
            pass


async def test_forbidden_proxy_refuses_the_tunnel(door: FrontDoor) -> None:
    await door.set_fault(FrontDoorFault.PROXY_FORBIDDEN)
    with pytest.raises(ProxyRefusedError, match="HTTP/1.1 403 Forbidden"):
        (await open_tunnel(door.proxy_url)).close()
    with pytest.raises(ProxyRefusedError, match="SOCKS5 reply 2"):
        (await open_tunnel(door.socks_url)).close()


# -- lifecycle and TLS material ----------------------------------------------------------------


async def test_stop_leaves_no_listener_connection_or_task_behind(
    tmp_path: Path, recorder: RecordingHandler
) -> None:
    door = FrontDoor(recorder, state_dir=tmp_path)
    await door.start()
    silent = await open_tunnel(door.proxy_url)  # a tunnel stuck before any TLS
    async with websocket(door.proxy_url, door.ca_cert_path) as ws:
        await ws.send(INTRO + frame(b"open"))
        await recorder.next_frame()
        await door.stop()
        async with asyncio.timeout(STEP):
            await ws.wait_closed()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(STEP):
            assert await loop.sock_recv(silent, 1) == b""  # closed by the door
    finally:
        silent.close()
    assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []
    assert recorder.closed == ["closed"]
    for url in (door.proxy_url, door.socks_url):
        with pytest.raises(ConnectionRefusedError):
            (await open_tunnel(url)).close()


def test_tls_material_is_kept_across_runs_with_private_keys(tmp_path: Path) -> None:
    first = tls.load_or_create(tmp_path)
    ca_pem = first.ca_cert_path.read_bytes()
    leaf_pem = first.trusted.leaf_cert_path.read_bytes()
    second = tls.load_or_create(tmp_path)
    assert second.ca_cert_path.read_bytes() == ca_pem
    assert second.trusted.leaf_cert_path.read_bytes() == leaf_pem
    for authority in (second.trusted, second.untrusted):
        assert authority.ca_key_path.stat().st_mode & 0o777 == 0o600
        assert authority.leaf_key_path.stat().st_mode & 0o777 == 0o600
    assert first.untrusted.ca_cert_path.read_bytes() != ca_pem


def test_a_broken_leaf_is_replaced_but_the_ca_kept(tmp_path: Path) -> None:
    first = tls.load_or_create(tmp_path)
    ca_pem = first.ca_cert_path.read_bytes()
    first.trusted.leaf_key_path.write_text("not a key")
    second = tls.load_or_create(tmp_path)
    assert second.ca_cert_path.read_bytes() == ca_pem
    second.trusted.server_context()  # the new leaf and key match


# -- the real engine -----------------------------------------------------------------------------


async def run_engine_probe(
    door: FrontDoor, tmp_path: Path, proxy_url: str
) -> asyncio.subprocess.Process:
    env = dict(os.environ, SSL_CERT_FILE=str(door.ca_cert_path))
    log_path = tmp_path / "engine.log"
    with log_path.open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(PROBE),
            str(tmp_path / "engine.db"),
            proxy_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=env,
        )


async def probe_events(process: asyncio.subprocess.Process) -> AsyncIterator[dict[str, str]]:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        yield json.loads(line)


async def stop_probe(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


@pytest.mark.e2e
@pytest.mark.timeout(90)
async def test_the_real_engine_reaches_the_handler_with_its_noise_hello(
    door: FrontDoor, recorder: RecordingHandler, tmp_path: Path
) -> None:
    from waqr.waproto.proto import HandshakeMessage

    process = await run_engine_probe(door, tmp_path, door.proxy_url)
    try:
        async with asyncio.timeout(45):
            first = await recorder.received.get()
    finally:
        await stop_probe(process)
    assert recorder.prologues == [INTRO]
    hello = HandshakeMessage.FromString(first)
    assert len(hello.clientHello.ephemeral) == 32


@pytest.mark.e2e
@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (FrontDoorFault.PROXY_FORBIDDEN, "Forbidden"),
        (FrontDoorFault.UNTRUSTED_TLS, "x509: certificate signed by unknown authority"),
    ],
)
async def test_the_real_engine_fails_to_connect_naming_the_fault(
    door: FrontDoor,
    recorder: RecordingHandler,
    tmp_path: Path,
    fault: FrontDoorFault,
    expected: str,
) -> None:
    await door.set_fault(fault)
    process = await run_engine_probe(door, tmp_path, door.proxy_url)
    try:
        async with asyncio.timeout(45):  # well under the engine's own 20 s + 75 s timeouts
            async for event in probe_events(process):
                if event["event"] != "connecting":
                    break
    finally:
        await stop_probe(process)
    assert event["event"] == "connect_failed", (tmp_path / "engine.log").read_text()[-2000:]
    assert "failed to dial whatsapp web websocket" in event["error"]
    assert expected in event["error"]
    assert recorder.prologues == []
