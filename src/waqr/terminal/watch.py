"""Follow the session for ``waqr link``: one queue of updates, whatever the source.

The bridge's push stream (``GET /admin/wa/events``) says at once when the QR rotates or the
state changes. When it is not there (an older bridge answers 404; the stream broke; the
bridge itself lost the bot's stream, which its first snapshot says), the watcher polls
``/status`` and ``/qr`` every second instead, and tries the stream again a little later.

Updates, each a ``(kind, value)`` pair:
- ``("state", status)``: the bridge's ``/status`` body or the bot's ``state`` event;
- ``("qr", body)``: ``/qr``'s body (``qr``, ``expires_in``), as fetched or pushed;
- ``("trouble", UiError)``: the bridge cannot be asked right now; it keeps trying;
- ``("fatal", UiError)``: asking again cannot help (the token is refused); it has stopped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from waqr.ui.client import BridgeClient, UiError

Update = tuple[str, Any]

# A refused token does not become right by asking again (and each try counts towards the
# bridge's failure limit).
FATAL_KINDS = frozenset({"bad_token", "throttled"})
# The bot's states in which a QR may be on offer (as the bridge's relay has them).
QR_STATES = frozenset({"qr_ready", "pairing_code"})
POLL_INTERVAL = 1.0  # what the UI does: a rotation shows within a second
PUSH_RETRY_AFTER = 15.0  # seconds of polling before the push stream is tried again


class Watcher:
    """A daemon thread that feeds :attr:`updates`. It has its own client: the caller's
    thread keeps using its own for the requests it makes (a QR fetch, a pairing code)."""

    def __init__(
        self,
        make_client: Callable[[], BridgeClient],
        *,
        poll_interval: float = POLL_INTERVAL,
        push_retry_after: float = PUSH_RETRY_AFTER,
    ) -> None:
        self.updates: queue.Queue[Update] = queue.Queue()
        self._make_client = make_client
        self._poll_interval = poll_interval
        self._push_retry_after = push_retry_after
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waqr-link-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end. It is a daemon: a read blocked on the stream does not keep
        the process alive."""
        self._stopping.set()

    def _run(self) -> None:
        client = self._make_client()
        try:
            while not self._stopping.is_set():
                if not self._follow_push(client):
                    return
                if not self._poll(client, self._push_retry_after):
                    return
        finally:
            client.close()

    def _report(self, error: UiError) -> bool:
        """Pass the error on; False when it is fatal (the thread then ends)."""
        if error.kind in FATAL_KINDS:
            self.updates.put(("fatal", error))
            return False
        self.updates.put(("trouble", error))
        return True

    def _follow_push(self, client: BridgeClient) -> bool:
        """Forward the push stream until it ends. False on a fatal error."""
        try:
            first = True
            for kind, data in client.events():
                if self._stopping.is_set():
                    return True
                self.updates.put((kind, data))
                if first and not (data.get("bridge") or {}).get("pushConnected", True):
                    return True  # the bridge is not hearing from the bot: poll instead
                first = False
        except UiError as error:
            return self._report(error)
        except ValueError:
            pass  # an event that is not JSON: treat the stream as broken
        return True

    def _poll(self, client: BridgeClient, duration: float) -> bool:
        """Poll for ``duration`` seconds. False on a fatal error."""
        until = time.monotonic() + duration
        while not self._stopping.is_set() and time.monotonic() < until:
            try:
                status = client.status()
                self.updates.put(("state", status))
                if status.get("status") in QR_STATES:
                    self.updates.put(("qr", client.qr()))
            except UiError as error:
                if not self._report(error):
                    return False
            self._stopping.wait(self._poll_interval)
        return True
