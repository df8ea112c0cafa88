"""A stand-in bridge on loopback for rendering tests: it streams whatever status the test
sets (``/admin/wa/events``) and answers ``/admin/wa/status`` (and an empty inbox). Only for
what the real bridge cannot be made to say, such as a reason message carrying markup."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeBridge:
    def __init__(self, status: dict[str, Any]) -> None:
        self._status = status
        self._version = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/admin/wa/status" or self.path.startswith("/admin/wa/messages?"):
                    reply = fake.status if self.path == "/admin/wa/status" else {"messages": []}
                    body = json.dumps(reply).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.path != "/admin/wa/events":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                sent = -1
                with contextlib.suppress(OSError):
                    while not fake.closed:
                        version, status = fake.current()
                        if version != sent:
                            event = f"event: state\ndata: {json.dumps(status)}\n\n"
                            self.wfile.write(event.encode())
                            self.wfile.flush()
                            sent = version
                        time.sleep(0.1)

        self.closed = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def status(self) -> dict[str, Any]:
        return self.current()[1]

    def current(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            return self._version, self._status

    def set(self, status: dict[str, Any]) -> None:
        with self._lock:
            self._status = status
            self._version += 1


@contextlib.contextmanager
def fake_bridge(status: dict[str, Any]) -> Iterator[FakeBridge]:
    bridge = FakeBridge(status)
    thread = threading.Thread(target=bridge.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield bridge
    finally:
        bridge.closed = True
        bridge.server.shutdown()
        bridge.server.server_close()
