"""The UI's one subscription to the bridge: a thread per Streamlit server process follows
``GET /admin/wa/events`` and holds the latest status and QR for every session to read, so an
open tab costs the bridge nothing. While the stream cannot be held, the same thread polls
the status every ``poll_every`` seconds instead, and the snapshot says so (``live`` False).

A pushed state carries no QR code, only whether one is on offer: the feed asks for the QR
itself once when it learns of one it does not hold; every rotation after that arrives as a
``qr`` event.

Messages the same way: the last INBOX_KEEP incoming ones, read from the bridge's inbox once
per stream (to catch up on what came while no stream was held), then from ``message`` events;
and the latest ``receipt`` event of each sent message. A read that failed is tried again at
the next event (state or message), and while polling, with each status poll."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError

from waqr.ui.client import BridgeClient, UiError, error_for, unreachable

log = logging.getLogger("waqr.ui.feed")

LINKING = frozenset({"qr_ready", "pairing_code"})
POLL_EVERY = 5.0
# The bridge sends a ping every 15 s; a stream silent for this long is dead.
STREAM_READ_TIMEOUT = 45.0
# Wrong-token replies come back this slowly, so a bad token does not feed the bridge's
# failure limiter every few seconds.
REFUSED_RETRY = 30.0
# The incoming messages the page shows, the last ones.
INBOX_KEEP = 20
# The bridge's largest inbox page: catching up on a long inbox takes few requests.
INBOX_PAGE = 500
# Sent messages whose latest receipt is held: far more than a person sends from the page
# while watching, and a bound on what an API client's sends can make the UI hold.
RECEIPTS_KEEP = 500


@dataclass(frozen=True)
class Snapshot:
    status: dict[str, Any] | None = None
    qr: str | None = None
    qr_expires_at: float | None = None  # unix seconds
    error: UiError | None = None
    live: bool = False  # following the push stream (else polling)
    started: bool = False  # False until the first answer or failure
    # The last INBOX_KEEP incoming messages, oldest first, as the bridge gives them.
    inbox: tuple[dict[str, Any], ...] = ()
    inbox_error: UiError | None = None  # why the inbox could not be read (the rest may work)
    # The latest receipt event (id, to, status, receipt, error) of each sent message, by id.
    receipts: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def state(self) -> str | None:
        return str(self.status.get("status")) if self.status else None


class BridgeFeed:
    def __init__(self, client: BridgeClient, *, poll_every: float = POLL_EVERY) -> None:
        self.client = client
        self.poll_every = poll_every
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self._stop = threading.Event()
        self._stream = httpx.Client(
            base_url=client.api_url,
            headers={"Authorization": f"Bearer {client.token}", "Accept": "text/event-stream"},
            timeout=httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT),
        )
        self._thread = threading.Thread(target=self._run, name="waqr-ui-feed", daemon=True)
        # The feed thread's own: the last inbox seq held, and whether the inbox has been read
        # since the current stream opened (events before it were missed).
        self._last_seq = 0
        self._inbox_current = False

    def start(self) -> BridgeFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._stream.close()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, started=True, **changes)

    # --- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            delay = self.poll_every
            try:
                self._follow()
            except UiError as error:
                self._update(error=error, live=False)
                if error.kind in ("bad_token", "throttled"):
                    delay = REFUSED_RETRY
            except (httpx.HTTPError, SSEError, ValueError) as exc:
                log.warning("bridge event stream lost: %s", type(exc).__name__)
            except Exception:  # the thread outlives any surprise; the page falls back to polls
                log.exception("bridge event stream failed")
            self._update(live=False)
            if self._stop.is_set():
                return
            if delay == self.poll_every:
                try:
                    self._poll()
                except UiError as error:
                    self._update(error=error)
                    if error.kind in ("bad_token", "throttled"):
                        delay = REFUSED_RETRY
                except Exception:
                    log.exception("bridge status poll failed")
            self._stop.wait(delay)

    def _follow(self) -> None:
        self._inbox_current = False
        try:
            with self._stream.stream("GET", "/admin/wa/events") as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_for(response)
                for event in EventSource(response).iter_sse():
                    data = json.loads(event.data) if event.data else {}
                    if not isinstance(data, dict):
                        continue
                    if event.event == "state":
                        self._on_state(data)
                        self._update(live=True)
                        if not self._inbox_current:
                            self._catch_up()
                    elif event.event == "qr":
                        self._on_qr(data)
                    elif event.event == "message" and not self._inbox_current:
                        self._catch_up()  # a gap may lie before it: read from the last held
                    elif event.event == "message":
                        self._add_messages([data])
                    elif event.event == "receipt":
                        self._on_receipt(data)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise unreachable(self.client.api_url, timed_out=False) from None

    def _poll(self) -> None:
        self._on_state(self.client.status())
        self._catch_up()

    def _catch_up(self) -> None:
        """Read the inbox past the last message held, page by page. Subscribed first: a
        message that arrives meanwhile comes as an event too, and is taken once (by seq)."""
        try:
            while True:
                page = self.client.inbox(after=self._last_seq, limit=INBOX_PAGE).get("messages")
                messages = [m for m in page or [] if isinstance(m, dict)]
                self._add_messages(messages)
                if len(messages) < INBOX_PAGE:
                    break
        except UiError as error:
            self._update(inbox_error=error)
            return
        self._inbox_current = True
        self._update(inbox_error=None)

    def _add_messages(self, messages: Iterable[dict[str, Any]]) -> None:
        fresh = []
        for message in messages:
            seq = message.get("seq")
            if isinstance(seq, int) and seq > self._last_seq:
                fresh.append(message)
                self._last_seq = seq
        if fresh:
            self._update(inbox=(*self.snapshot().inbox, *fresh)[-INBOX_KEEP:])

    def _on_receipt(self, receipt: dict[str, Any]) -> None:
        message_id = receipt.get("id")
        if not isinstance(message_id, str):
            return
        receipts = dict(self.snapshot().receipts)
        receipts.pop(message_id, None)  # re-inserted last: the oldest go first
        receipts[message_id] = receipt
        while len(receipts) > RECEIPTS_KEEP:
            del receipts[next(iter(receipts))]
        self._update(receipts=receipts)

    def _on_state(self, status: dict[str, Any]) -> None:
        state = status.get("status")
        if state not in LINKING:
            self._update(status=status, error=None, qr=None, qr_expires_at=None)
            return
        self._update(status=status, error=None)
        current = self.snapshot()
        fresh = current.qr_expires_at is not None and current.qr_expires_at > time.time()
        offered = bool((status.get("qr") or {}).get("available"))
        if offered and not fresh:
            try:
                self._on_qr(self.client.qr())
            except UiError as error:
                self._update(error=error)

    def _on_qr(self, data: dict[str, Any]) -> None:
        code, expires_in = data.get("qr"), data.get("expires_in")
        if code and expires_in:
            self._update(qr=str(code), qr_expires_at=time.time() + float(expires_in))
        else:
            self._update(qr=None, qr_expires_at=None)
