"""Webhook delivery: one task per URL reads the durable webhook outbox (``messages.py``) and
POSTs each event, signed, in order per chat, until the receiver answers 2xx.

The contract (README, "Webhooks"): the body is JSON ``{"id", "type", "createdAt", "data"}``;
``X-Waqr-Event-Id`` repeats the id (at-least-once: a receiver de-duplicates by it),
``X-Waqr-Timestamp`` is unix seconds, and ``X-Waqr-Signature`` is ``sha256=`` and the hex
HMAC-SHA256, keyed with ``WAQR_WEBHOOK_SECRET``, of ``"<timestamp>.<body>"``. A failed delivery
(no answer, or not 2xx) is retried with exponential backoff (``backoff.py``) until
``WAQR_WEBHOOK_RETRY_PERIOD`` has passed since the event; then it is ``failed`` (listed at
``GET /webhooks/failed``, replayed by ``POST /webhooks/failed/replay``) and the chat's next
event goes out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time

import httpx

from waqr.backoff import Backoff
from waqr.bot.messages import Delivery, MessageStore
from waqr.logs import log_event
from waqr.tasks import cancel, spawn

log = logging.getLogger("waqr.webhooks")

DELIVERY_TIMEOUT = 10.0
# How long a sender sleeps at most before it looks at the outbox again (new events wake it).
IDLE_CHECK = 5.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (Python): compare in constant time."""
    return hmac.compare_digest(signature(secret, timestamp, body), header)


class WebhookSender:
    def __init__(
        self,
        store: MessageStore,
        secret: str,
        *,
        retry_period: float,
        backoff_min: float = 1.0,
        backoff_max: float = 300.0,
    ) -> None:
        self.store = store
        self.secret = secret
        self.retry_period = retry_period
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._wake: dict[str, asyncio.Event] = {url: asyncio.Event() for url in store.webhook_urls}
        self._tasks: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None

    def start(self) -> None:
        # No proxy from the environment: webhooks go where the operator said, directly.
        self._http = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT, trust_env=False)
        for number, url in enumerate(self.store.webhook_urls, 1):
            self._tasks.append(spawn(self._run(url), name=f"webhook-{number}"))

    async def close(self) -> None:
        for task in self._tasks:
            await cancel(task)
        self._tasks.clear()
        if self._http is not None:
            await self._http.aclose()

    def wake(self) -> None:
        """New events are in the outbox."""
        for event in self._wake.values():
            event.set()

    async def _run(self, url: str) -> None:
        wake = self._wake[url]
        while True:
            wake.clear()
            due = await asyncio.to_thread(self.store.due_deliveries, url)
            now = time.time()
            ready = [d for d in due if d.next_at <= now]
            # One chat's delivery at a time, chats side by side: a slow chat holds only itself.
            await asyncio.gather(*(self._deliver(d) for d in ready))
            if ready:
                continue
            later = min((d.next_at for d in due), default=now + IDLE_CHECK)
            try:
                async with asyncio.timeout(max(0.05, min(later - now, IDLE_CHECK))):
                    await wake.wait()
            except TimeoutError:
                pass

    async def _deliver(self, delivery: Delivery) -> None:
        assert self._http is not None
        body = delivery.body.encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Waqr-Event-Id": delivery.event_id,
            "X-Waqr-Timestamp": stamp,
            "X-Waqr-Signature": signature(self.secret, stamp, body),
        }
        try:
            response = await self._http.post(delivery.url, content=body, headers=headers)
            error = None if response.is_success else f"answered {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if error is None:
            await asyncio.to_thread(self.store.delivered, delivery.seq)
            return
        retry_at: float | None = None
        if time.time() - delivery.created_at < self.retry_period:
            backoff = Backoff(self.backoff_min, self.backoff_max, attempts=delivery.attempts)
            retry_at = time.time() + backoff.next_delay()
        else:
            # The URL may carry a token in its query: logged by its position only.
            number = self.store.webhook_urls.index(delivery.url) + 1
            log_event(log, "webhook delivery failed", level=logging.WARNING, webhook=number)
        await asyncio.to_thread(self.store.delivery_failed, delivery.seq, error, retry_at=retry_at)
