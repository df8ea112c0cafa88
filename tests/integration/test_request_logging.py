"""Request lines are DEBUG detail: at INFO a service's log holds its events, not one line per
HTTP call; at DEBUG the calls are there."""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator

import httpx
import pytest

from waqr.logs import configure_logging


@pytest.fixture
def server_url() -> Iterator[str]:
    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ping"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("httpx", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.mark.parametrize(("level", "logged"), [("INFO", False), ("DEBUG", True)])
def test_http_client_calls_are_logged_only_at_debug(
    server_url: str, capsys: pytest.CaptureFixture[str], level: str, logged: bool
) -> None:
    configure_logging(level, "json")
    logging.getLogger("waqr.test").info("an event that matters")

    assert httpx.get(server_url, timeout=5).status_code == 204

    err = capsys.readouterr().err
    assert "an event that matters" in err
    assert ("HTTP Request: GET" in err) is logged
