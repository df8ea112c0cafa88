"""The bridge's front gate, against a real bridge on loopback: the credential is checked
before any body is read, bodies are capped, and the client address cannot be spoofed.

Most tests run `waqr api` itself. The X-Forwarded-For tests also run the bridge app under
uvicorn with ``proxy_headers=False`` in this process: uvicorn by default rewrites the client
address from X-Forwarded-For for requests from 127.0.0.1 (``forwarded_allow_ips``), before
the app sees them, which is exactly the spoofing the gate exists to prevent."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.integration.test_bridge import API_KEY, BEARER, running_bridge
from tests.integration.test_bridge import TOKEN as VALID_TOKEN
from tests.procs import free_port, wait_until
from waqr.bridge.app import create_app
from waqr.settings import load_settings

pytestmark = pytest.mark.timeout(120)

BOT_DOWN = "http://127.0.0.1:9"  # nothing listens there: the bot is down
WRONG = {"Authorization": "Bearer " + "w" * 40}
HUNDRED_FIFTY_MB = 150 * 1024 * 1024


def start_huge_upload(url: str, path: str, **headers: str) -> tuple[int, dict[str, object]]:
    """POST ``path`` promising a 150 MB body and sending only its first bytes; the status and
    JSON body of the answer. A bridge that waited for the rest would never answer, and the
    socket timeout would fail the test."""
    lines = [f"POST {path} HTTP/1.1", "Host: bridge", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {HUNDRED_FIFTY_MB}", "", ""]
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall("\r\n".join(lines).encode() + b'{"phone": "+49')
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


@contextlib.contextmanager
def bridge_in_process(**env: str) -> Iterator[str]:
    """The bridge app under uvicorn as `waqr api` should run it (proxy_headers=False)."""
    settings = load_settings(
        {"WA_QR_BRIDGE_TOKEN": VALID_TOKEN, "BOT_URL": BOT_DOWN, "WA_QR_API_KEY": API_KEY, **env}
    )
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, background=False),
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        proxy_headers=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/healthz").status_code == 200, 30)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


def audited_clients(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [str(r.__dict__["client"]) for r in caplog.records if r.name == "waqr.audit"]


# --- authentication before the body ------------------------------------------------------------


def test_a_huge_body_without_credentials_is_refused_without_being_read(tmp_path: Path) -> None:
    with running_bridge(tmp_path, BOT_DOWN) as api:
        status, body = start_huge_upload(api.url, "/admin/wa/pair-code")
        assert status == 401
        assert body == {"error": "unauthorized", "detail": "missing credential"}


def test_a_huge_body_with_credentials_is_413_without_being_read(tmp_path: Path) -> None:
    with running_bridge(tmp_path, BOT_DOWN) as api:
        status, body = start_huge_upload(api.url, "/admin/wa/pair-code", **BEARER)
        assert status == 413
        assert body["error"] == "payload_too_large"


def test_a_body_over_the_limit_with_valid_credentials_is_413(tmp_path: Path) -> None:
    with running_bridge(tmp_path, BOT_DOWN, WAQR_MAX_BODY_BYTES="2048") as api:
        oversize = {"phone": "+4915112345678", "padding": "x" * 4096}
        reply = api.post("/admin/wa/pair-code", json=oversize, headers=BEARER)
        assert reply.status_code == 413
        assert reply.json() == {
            "error": "payload_too_large",
            "detail": "the request body is larger than 2048 bytes (WAQR_MAX_BODY_BYTES)",
        }


def test_a_chunked_body_is_cut_off_when_it_grows_past_the_limit(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"phone": "+4915112345678", "padding": "'
        for _ in range(8):
            yield b"x" * 512
        yield b'"}'

    with running_bridge(tmp_path, BOT_DOWN, WAQR_MAX_BODY_BYTES="2048") as api:
        headers = {**BEARER, "Content-Type": "application/json"}
        reply = api.post("/admin/wa/pair-code", content=chunks(), headers=headers)
        assert reply.status_code == 413
        assert reply.json()["error"] == "payload_too_large"
        # A body within the limit still reaches the route (the bot is down here).
        small = api.post("/admin/wa/pair-code", json={"phone": "+4915112345678"}, headers=BEARER)
        assert small.status_code == 503


def test_malformed_json_without_credentials_is_401_and_counts_as_a_failure(
    tmp_path: Path,
) -> None:
    with running_bridge(tmp_path, BOT_DOWN, WAQR_AUTH_MAX_FAILURES="2") as api:
        junk = {"Content-Type": "application/json"}
        codes = [
            api.post("/admin/wa/pair-code", content=b"{not json", headers=junk).status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 429]
        # The same junk with the token is the caller's own mistake: 422, named.
        mine = api.post("/admin/wa/pair-code", content=b"{not json", headers={**junk, **BEARER})
        assert mine.status_code == 422


def test_the_api_key_routes_are_guarded_before_the_body_too(tmp_path: Path) -> None:
    with running_bridge(tmp_path, BOT_DOWN, WA_QR_API_KEY=API_KEY) as api:
        status, body = start_huge_upload(api.url, "/wa/connect")
        assert status == 401
        assert body["error"] == "unauthorized"


# --- the client address -------------------------------------------------------------------------


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="waqr.audit")
    with bridge_in_process(WAQR_AUTH_MAX_FAILURES="3") as url, httpx.Client(base_url=url) as c:
        # Rotating the header does not get a fresh allowance...
        codes = [
            c.get("/admin/wa/status", headers={**WRONG, "X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(4)
        ]
        assert [reply.status_code for reply in codes] == [401, 401, 401, 429]
        # ...and naming someone else does not lock them out: it is all the peer's.
        victim = c.get("/admin/wa/status", headers={**WRONG, "X-Forwarded-For": "127.0.0.1"})
        assert victim.status_code == 429
        spoofed = {**BEARER, "X-Forwarded-For": "198.51.100.99"}
        assert c.post("/admin/wa/reconnect", headers=spoofed).status_code == 503
    assert audited_clients(caplog) == ["127.0.0.1"]


def test_behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="waqr.audit")
    trusted = {"WAQR_AUTH_MAX_FAILURES": "2", "WAQR_TRUSTED_PROXIES": "127.0.0.0/8"}
    with bridge_in_process(**trusted) as url, httpx.Client(base_url=url) as c:

        def as_client(address: str, headers: dict[str, str]) -> int:
            # The caller's own made-up hop on the left; the proxy appended the real one.
            forwarded = {"X-Forwarded-For": f"10.9.9.9, {address}"}
            return c.get("/admin/wa/status", headers={**headers, **forwarded}).status_code

        assert [as_client("203.0.113.1", WRONG) for _ in range(3)] == [401, 401, 429]
        assert as_client("203.0.113.2", WRONG) == 401  # a different client behind the proxy
        forwarded = {"X-Forwarded-For": "10.9.9.9, 203.0.113.1"}
        reply = c.post("/admin/wa/reconnect", headers={**BEARER, **forwarded})
        assert reply.status_code == 503  # the valid token passes even for a throttled client
    assert audited_clients(caplog) == ["203.0.113.1"]


def test_waqr_api_does_not_let_uvicorn_rewrite_the_client_address(tmp_path: Path) -> None:
    with running_bridge(tmp_path, BOT_DOWN, WAQR_AUTH_MAX_FAILURES="3") as api:
        codes = [
            api.get(
                "/admin/wa/status", headers={**WRONG, "X-Forwarded-For": f"203.0.113.{n}"}
            ).status_code
            for n in range(4)
        ]
        assert codes == [401, 401, 401, 429]
