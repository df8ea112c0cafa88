"""The engine child process: hosts one neonize client for one connection attempt.

Run as ``python -m waqr.engine.child`` by the supervisor, never imported by the service.
neonize 0.5.2 is not safe inside the service process (unlocked Go maps abort the process
under concurrent calls, some calls panic before connect, a hung proxy blocks stop()
forever, every connect leaks a store), so it lives here, where a crash or a SIGKILL costs
one reconnect and nothing else. Inside: one client object for the child's whole life, FFI
calls serialized by one lock, Go callbacks only hop onto the event loop, and every handler
error is logged (neonize would swallow it).

Streams: stdin carries the config line, then commands; the original stdout becomes the
private event pipe; fd 1 is pointed at stderr, so whatever neonize or Go print lands in the
supervisor's log capture rather than corrupting the event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from waqr.engine import protocol as p
from waqr.engine.store_probe import store_has_device
from waqr.engine.stream_node import sanitise
from waqr.engine.version import neonize_library
from waqr.engine.wire import encode_event, encode_reply
from waqr.errors import EngineUnavailable
from waqr.lifeline import die_with_parent
from waqr.logs import configure_logging, log_event
from waqr.tasks import spawn

NEONIZE_VERSION = "0.5.2"
log = logging.getLogger("waqr.engine.child")

# neonize's ConnectFailureReason enum -> the status code WhatsApp sent (whatsmeow
# types/events ConnectFailureReason; neonize proto Neonize.proto).
_REASON_CODES = {1: 400, 2: 401, 3: 402, 4: 403, 5: 406, 6: 405, 7: 409, 8: 500, 9: 501, 10: 503}

# How long an orderly stop may take when the supervisor does not say (it sends half of its
# own stop timeout, after which it would SIGKILL us).
DEFAULT_STOP_GRACE = 2.0
COMMANDS = frozenset({"ping", "pair_phone", "logout", "send_text"})
# How long a message handler waits for the supervisor's "persisted" when the config does not
# say. Past it the handler gives up (and logs): whatsmeow then acknowledges the message.
DEFAULT_PERSIST_TIMEOUT = 10.0
MAX_INCOMING_TEXT = 65536
# whatsmeow receipt types worth reporting (neonize Receipt.ReceiptType): the rest are this
# account's own devices (read-self), retries and server receipts.
_RECEIPT_KINDS = {1: "delivered", 4: "read", 6: "played"}

# whatsmeow qrchan.go: the first code of a batch of exactly six refs is shown for 60 s,
# every other code for 20 s.
FIRST_QR_LIFETIME = 60.0
LATER_QR_LIFETIME = 20.0
FULL_BATCH = 6
# How long a logout or stream error event waits for whatsmeow's log line with the node (the
# line travels through neonize's log thread, the event through its event callback).
NODE_WAIT = 1.0
NODE_STALE = 5.0


def qr_lifetime(index: int, batch_size: int | None) -> float:
    """How long whatsmeow shows the ``index``-th code (0-based) of a batch. WhatsApp sends six
    refs, so an unknown batch size is taken as six."""
    if index == 0 and (batch_size is None or batch_size == FULL_BATCH):
        return FIRST_QR_LIFETIME
    return LATER_QR_LIFETIME


def unix_seconds(stamp: int) -> float:
    """A Go time neonize hands over as an integer (seconds, or milliseconds in some builds) as
    unix seconds; 0 (Go's zero time turned into nothing) stays 0."""
    if stamp <= 0:
        return 0.0
    return stamp / 1000.0 if stamp > 10**11 else float(stamp)


def node_xml(node: Any) -> str:
    """A neonize ``Node`` message in whatsmeow's XMLString form (bytes as hex)."""
    attrs = ""
    for attr in node.Attrs:
        kind = attr.WhichOneof("Value")
        if kind == "jid":
            value = f"{attr.jid.User}@{attr.jid.Server}"
        else:
            value = str(getattr(attr, kind)) if kind else ""
        attrs += f' {attr.name}="{value}"'
    children = "".join(node_xml(child) for child in node.Nodes)
    content = children or (node.Bytes.hex() if node.Bytes else "")
    return f"<{node.Tag}{attrs}>{content}</{node.Tag}>" if content else f"<{node.Tag}{attrs}/>"


def _preflight() -> None:
    """Fail loudly, before import, where neonize would otherwise try to download its library."""
    library, installed = neonize_library()
    if installed != NEONIZE_VERSION:
        raise EngineUnavailable(
            f"neonize {installed} is installed; waqr is pinned to {NEONIZE_VERSION}"
        )
    if not library.is_file():
        raise EngineUnavailable(
            f"neonize's shared library {library.name} is missing from {library.parent}; reinstall "
            f"neonize=={NEONIZE_VERSION} (waqr never lets it download one at run time)"
        )


class WhatsmeowWatch(logging.Filter):
    """Reads facts out of whatsmeow's own log lines that neonize 0.5.2 never delivers as
    events, then lets through only the lines at or above the operator's level.

    - The QR batch size: whatsmeow shows the first code for 60 s only when the batch has
      exactly six refs, else 20 s (qrchan.go), but neonize hands Python one code at a time
      and its QR event does not fire. The refs are visible only in the DEBUG line of the
      received ``<pair-device>`` node, so a linking child runs the Go side at DEBUG.
    - A 405 refusal before linking: whatsmeow logs "Client outdated (405) connect failure"
      but neonize emits no ClientOutdated event in that phase.
    - A 5xx refusal: "Got 503/... connect failure, assuming automatic reconnect will handle
      it" is the only sign of why the engine keeps reconnecting.
    - The whole node WhatsApp ended the stream with (``<stream:error>``, ``<failure>``):
      whatsmeow's events keep only its code and conflict type, and the node is in the DEBUG
      line of every received node, so the Go side always runs at DEBUG and only that
      logger (``whatsmeow.Client.Recv``) is read at DEBUG on the Python side.
    - A socket closed by the server while whatsmeow expected a disconnect: after pairing it
      expects one for the 515 restart, and when the close wins the race against the 515 it
      logs "OnDisconnect() called, but it was expected, so not emitting event" and may never
      redial. Reported as Disconnected, so the session need not wait out its login deadline.
    """

    _OUTDATED = re.compile(r"Client outdated \(405\) connect failure")
    _TRANSIENT = re.compile(r"Got (\d{3})/\S* connect failure, assuming automatic reconnect")
    _SILENT_CLOSE = re.compile(r"OnDisconnect\(\) called, but it was expected")

    def __init__(self, level: int, child: EngineChild, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.level = level
        self.child = child
        self.loop = loop

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("whatsmeow"):
            text = record.getMessage()
            if record.name == "whatsmeow.Client.Recv":
                if "<pair-device>" in text:
                    self.loop.call_soon_threadsafe(self.child.learn_batch, text.count("<ref>"))
                elif text.startswith(("<stream:error", "<failure")):
                    self.loop.call_soon_threadsafe(self.child.note_error_node, text)
            elif self._OUTDATED.search(text):
                self.loop.call_soon_threadsafe(self.child.emit_once, p.ClientOutdated())
            elif match := self._TRANSIENT.search(text):
                status = int(match.group(1))
                self.loop.call_soon_threadsafe(self.child.emit, p.ServerUnavailable(status))
            elif self._SILENT_CLOSE.search(text):
                self.loop.call_soon_threadsafe(self.child.note_silent_close)
            if record.levelno >= self.level and "<" in text:
                # whatsmeow quotes whole nodes in some warnings ("Closing handler queue loop
                # in the middle of handling <stream:error ...>"): no JID or key in our logs.
                record.msg, record.args = sanitise(text), None
        return record.levelno >= self.level


class EngineChild:
    def __init__(self, config: dict[str, Any], event_fd: int) -> None:
        self.config = config
        self.event_fd = event_fd
        self.ffi_lock = asyncio.Lock()
        self.stop_grace = float(config.get("stop_grace") or DEFAULT_STOP_GRACE)
        self.stopping = False
        self.qr_index = 0
        self.qr_batch: int | None = None
        self.batch_known = asyncio.Event()
        self.emitted: set[p.EngineEvent] = set()
        self.linked = False  # the phone accepted the link in this child's life
        # The last <stream:error>/<failure> received, sanitised, with when (loop time); taken
        # by the event it explains.
        self.error_node: tuple[float, str] | None = None
        self.error_node_seen = asyncio.Event()
        self.client: Any = None
        self.persist_timeout = float(config.get("persist_timeout") or DEFAULT_PERSIST_TIMEOUT)
        self.last_delivery = 0
        self.awaiting: dict[int, asyncio.Future[None]] = {}

    def emit(self, event: p.EngineEvent) -> None:
        os.write(self.event_fd, encode_event(event))

    def reply(
        self, command_id: int, *, ok: bool, result: str | None = None, error: str = ""
    ) -> None:
        os.write(self.event_fd, encode_reply(command_id, ok=ok, result=result, error=error))

    def _guard(
        self, name: str, handler: Callable[[Any, Any], Awaitable[None]]
    ) -> Callable[[Any, Any], Awaitable[None]]:
        async def guarded(client: Any, message: Any) -> None:
            try:
                await handler(client, message)
            except Exception:
                log.exception("engine handler failed", extra={"handler": name})

        return guarded

    async def run(self) -> None:
        from neonize.aioze import events as ev
        from neonize.aioze.client import NewAClient
        from neonize.utils.log import log as neonize_log

        # The Go side forwards its log lines at neonize's logger level, read at connect: DEBUG,
        # for the received nodes (WhatsmeowWatch). Python drops what it does not need at the
        # logger, before any handler.
        level = logging.getLevelName(self.config.get("log_level", "WARNING"))
        # A linking child needs whatsmeow's DEBUG lines about the socket (WhatsmeowWatch).
        go_level = level if store_has_device(Path(self.config["store_path"])) else logging.DEBUG
        neonize_log.setLevel(logging.DEBUG)
        logging.getLogger("whatsmeow").setLevel(go_level)
        logging.getLogger("whatsmeow.Client.Recv").setLevel(logging.DEBUG)
        watch = WhatsmeowWatch(level, self, asyncio.get_running_loop())
        for log_handler in logging.getLogger().handlers:
            log_handler.addFilter(watch)
        self.client = client = NewAClient(self.config["store_path"])
        client.event.qr(self._guard("qr", self.on_qr))
        handlers: dict[Any, Callable[[Any, Any], Awaitable[None]]] = {
            ev.PairStatusEv: self.on_pair_status,
            ev.ConnectedEv: self.on_connected,
            ev.LoggedOutEv: self.on_logged_out,
            ev.TemporaryBanEv: self.on_temporary_ban,
            ev.ClientOutdatedEv: self.on_outdated,
            ev.ConnectFailureEv: self.on_connect_failure,
            ev.StreamErrorEv: self.on_stream_error,
            ev.StreamReplacedEv: self.on_stream_replaced,
            ev.DisconnectedEv: self.on_simple(p.Disconnected()),
            ev.KeepAliveTimeoutEv: self.on_keepalive_timeout,
            ev.KeepAliveRestoredEv: self.on_simple(p.KeepAliveRestored()),
        }
        for event_type, handler in handlers.items():
            client.event(event_type)(self._guard(event_type.__name__, handler))
        client.event(ev.ReceiptEv)(self._guard("ReceiptEv", self.on_receipt))
        self.hold_message_acks(client, asyncio.get_running_loop())

        proxy = None
        if self.config.get("proxy"):
            from neonize._binder import ProxySettings

            proxy = ProxySettings(proxy_address=self.config["proxy"])
        async with self.ffi_lock:
            task = await client.connect(proxy)
        task.add_done_callback(self.on_connect_task_done)
        await self.serve_commands()

    def on_connect_task_done(self, task: asyncio.Task[None]) -> None:
        if self.stopping or task.cancelled():
            return
        error = task.exception()
        # whatsmeow does not retry a failed first dial, and no event fires for it.
        self.emit(p.DialFailed(error=str(error) if error else "engine connect loop ended"))

    # --- event handlers -------------------------------------------------------------------
    def emit_once(self, event: p.EngineEvent) -> None:
        if event not in self.emitted:
            self.emitted.add(event)
            self.emit(event)

    def learn_batch(self, count: int) -> None:
        self.qr_batch = count
        self.batch_known.set()

    async def on_qr(self, _client: Any, data: bytes) -> None:
        # Stamped before the wait below: the code's life started when whatsmeow handed it over.
        issued_at = time.time()
        if self.qr_index == 0 and self.qr_batch is None:
            # The debug line travels through neonize's log thread; it may trail the code.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.batch_known.wait(), 1.0)
        lifetime = qr_lifetime(self.qr_index, self.qr_batch)
        self.qr_index += 1
        self.emit(p.QrIssued(code=data.decode(), lifetime=lifetime, issued_at=issued_at))

    async def on_pair_status(self, _client: Any, message: Any) -> None:
        if message.Error:
            log_event(log, "pairing failed", level=logging.WARNING, error=message.Error)
            return
        self.linked = True
        self.emit(p.PairSuccess(jid=f"{message.ID.User}@{message.ID.Server}"))

    def note_silent_close(self) -> None:
        if self.linked and not self.stopping:
            self.emit(p.Disconnected())

    async def on_connected(self, client: Any, _message: Any) -> None:
        jid = push_name = None
        try:
            async with self.ffi_lock:
                me = await client.get_me()
            if me.JID.User:
                jid = f"{me.JID.User}@{me.JID.Server}"
            push_name = me.PushName or None
        except Exception:
            log.exception("reading the linked account failed")
        self.emit(p.Connected(jid=jid, push_name=push_name))

    def note_error_node(self, text: str) -> None:
        self.error_node = (asyncio.get_running_loop().time(), sanitise(text))
        self.error_node_seen.set()

    async def seen_error_node(self) -> str | None:
        """The node the stream ended with, once whatsmeow's log line about it is in. A node
        older than ``NODE_STALE`` ended an earlier connection of this child (whatsmeow
        reconnects by itself) and explains nothing now."""
        loop = asyncio.get_running_loop()
        if self.error_node is not None and loop.time() - self.error_node[0] > NODE_STALE:
            self.error_node = None
            self.error_node_seen.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.error_node_seen.wait(), NODE_WAIT)
        taken, self.error_node = self.error_node, None
        self.error_node_seen.clear()
        return taken[1] if taken is not None else None

    async def on_logged_out(self, _client: Any, message: Any) -> None:
        code = _REASON_CODES.get(int(message.Reason), 401)
        node = await self.seen_error_node()
        self.emit(p.LoggedOut(code=code, on_connect=bool(message.OnConnect), node=node))

    async def on_stream_replaced(self, _client: Any, _message: Any) -> None:
        self.emit(p.StreamReplaced(node=await self.seen_error_node()))

    async def on_temporary_ban(self, _client: Any, message: Any) -> None:
        expire = float(message.Expire)
        if expire > 10**9:  # a Go time.Duration in nanoseconds
            expire /= 1e9
        self.emit(p.TemporaryBan(ban_code=int(message.Code), expires_in=expire))

    async def on_outdated(self, _client: Any, _message: Any) -> None:
        self.emit_once(p.ClientOutdated())

    async def on_connect_failure(self, _client: Any, message: Any) -> None:
        code = _REASON_CODES.get(int(message.Reason), 400)
        self.emit(p.ConnectFailure(code=code, message=message.Message))

    async def on_stream_error(self, _client: Any, message: Any) -> None:
        raw = message.Raw if message.HasField("Raw") else None
        logged = await self.seen_error_node()  # taken either way: it explains only this error
        node = sanitise(node_xml(raw)) if raw is not None else logged
        self.emit(p.StreamError(code=message.Code, node=node))

    async def on_keepalive_timeout(self, _client: Any, message: Any) -> None:
        self.emit(
            p.KeepAliveTimeout(
                error_count=int(message.ErrorCount),
                last_success=unix_seconds(int(message.LastSuccess)),
            )
        )

    def hold_message_acks(self, client: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Try to make whatsmeow wait for our message handler. neonize 0.5.2's Python side
        hands each event to the loop with ``run_coroutine_threadsafe`` and returns at once;
        here the calling thread waits instead until :meth:`on_message` has the supervisor's
        "persisted" (bounded: the handler's own timeout, plus a margin).

        Measured (tests/e2e/test_messaging.py, the strict xfail): this does NOT hold
        whatsmeow's delivery receipt with neonize 0.5.2. whatsmeow sends the receipt after
        its event dispatch returns (message.go decryptMessages), so neonize's Go side must
        call into Python off that path. The message is stored within milliseconds of the
        receipt, not before it; kept because it costs nothing and holds the receipt with an
        engine whose callback is synchronous."""
        from neonize.events import EVENT_TO_INT, INT_TO_EVENT, MessageEv

        message_code = EVENT_TO_INT[MessageEv]
        original = client.event.execute
        handler = self._guard("MessageEv", self.on_message)

        async def handle(message: Any) -> None:
            await handler(client, message)

        def execute(uuid: int, binary: int, size: int, code: int) -> None:
            if code != message_code:
                original(uuid, binary, size, code)
                return
            import ctypes

            message = INT_TO_EVENT[code].FromString(ctypes.string_at(binary, size))
            done = asyncio.run_coroutine_threadsafe(handle(message), loop)
            try:
                done.result(timeout=self.persist_timeout + 5.0)
            except Exception:
                log_event(log, "message handler did not finish", level=logging.ERROR)

        # The Go side reports only events that have a subscriber (neonize passes list_func as
        # a subscription mask at connect), and binds event.execute into its callback at
        # connect: both before it.
        client.event(MessageEv)(handler)
        client.event.execute = execute

    async def on_message(self, _client: Any, message: Any) -> None:
        info, content = message.Info, message.Message
        extended = content.extendedTextMessage
        text = content.conversation or extended.text
        if not text:
            return  # not a text message: media, reactions, protocol messages are not ours
        # WhatsApp's clients send at most this; a longer one (another client's doing) is cut,
        # so that it always fits the pipe's line limit (wire.MAX_LINE) and never kills us.
        text = text[:MAX_INCOMING_TEXT]
        source = info.MessageSource
        self.last_delivery += 1
        delivery = self.last_delivery
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.awaiting[delivery] = stored
        try:
            self.emit(
                p.MessageReceived(
                    id=info.ID,
                    chat=f"{source.Chat.User}@{source.Chat.Server}",
                    sender=f"{source.Sender.User}@{source.Sender.Server}",
                    push_name=info.Pushname,
                    text=text,
                    timestamp=unix_seconds(int(info.Timestamp)),
                    quoted_id=extended.contextInfo.stanzaID or None,
                    from_me=bool(source.IsFromMe),
                    delivery=delivery,
                )
            )
            # Raising here leaves whatsmeow free to acknowledge: neonize has no way to tell
            # it otherwise. The supervisor's death, not its slowness, is what we guard.
            async with asyncio.timeout(self.persist_timeout):
                await stored
        finally:
            self.awaiting.pop(delivery, None)

    def note_persisted(self, delivery: int) -> None:
        stored = self.awaiting.get(delivery)
        if stored is not None and not stored.done():
            stored.set_result(None)

    async def on_receipt(self, _client: Any, receipt: Any) -> None:
        kind = _RECEIPT_KINDS.get(int(receipt.Type))
        source = receipt.MessageSource
        if kind is None or source.IsFromMe:
            return
        chat = f"{source.Chat.User}@{source.Chat.Server}"
        stamp = unix_seconds(int(receipt.Timestamp))
        for message_id in receipt.MessageIDs:
            self.emit(
                p.ReceiptReceived(message_id=message_id, kind=kind, chat=chat, timestamp=stamp)
            )

    def on_simple(self, event: p.EngineEvent) -> Callable[[Any, Any], Awaitable[None]]:
        async def handler(_client: Any, _message: Any) -> None:
            self.emit(event)

        return handler

    # --- commands -------------------------------------------------------------------------
    async def serve_commands(self) -> None:
        """Read commands until ``stop`` or the end of stdin. Every other command runs as a
        task of its own: one hung in an FFI call must not leave ``ping`` or ``stop`` unread."""
        while True:
            line = await asyncio.to_thread(sys.stdin.buffer.readline)
            if not line:  # the supervisor is gone
                await self.stop()
                return
            try:
                command = json.loads(line)
                command_id = int(command["id"])
                name = str(command["cmd"])
            except (ValueError, KeyError, TypeError):
                log.error("malformed command from supervisor")
                continue
            if name == "persisted":
                self.note_persisted(int(command.get("delivery", 0)))
                continue
            if name == "stop":
                await self.stop()
                self.reply(command_id, ok=True)
                return
            spawn(self.answer(command_id, name, command), name=f"command-{command_id}-{name}")

    async def answer(self, command_id: int, name: str, command: dict[str, Any]) -> None:
        try:
            result = await self.execute(name, command)
        except Exception as exc:
            self.reply(command_id, ok=False, error=str(exc) or type(exc).__name__)
        else:
            self.reply(command_id, ok=True, result=result)

    async def execute(self, name: str, command: dict[str, Any]) -> str | None:
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}")
        # Every command waits for the FFI lock, ping included: a child stuck inside an FFI
        # call (a hung get_me() or PairPhone) must fail its ping, not answer it.
        async with self.ffi_lock:
            if name == "pair_phone":
                return str(await self.client.PairPhone(str(command["phone"]), True))
            if name == "logout":
                await self.client.logout()
            if name == "send_text":
                return await self.send_text(command)
        return None

    async def send_text(self, command: dict[str, Any]) -> str:
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
            ContextInfo,
            ExtendedTextMessage,
            Message,
        )
        from neonize.utils.jid import build_jid

        user, _, server = str(command["to"]).partition("@")
        text = str(command["text"])
        reply_to = command.get("reply_to")
        message: Any = text
        if reply_to:
            context = ContextInfo(stanzaID=str(reply_to))
            message = Message(
                extendedTextMessage=ExtendedTextMessage(text=text, contextInfo=context)
            )
        response = await self.client.send_message(
            build_jid(user, server or "s.whatsapp.net"), message
        )
        return str(response.ID)

    async def stop(self) -> None:
        """Disconnect, best effort and bounded: a call hung on the FFI lock must not keep us
        from exiting (the credentials are safe: whatsmeow commits each sqlite write)."""
        self.stopping = True
        if self.client is None:
            return
        try:
            async with asyncio.timeout(self.stop_grace), self.ffi_lock:
                await self.client.stop()
        except TimeoutError:
            log_event(log, "engine did not stop in time; leaving anyway", level=logging.WARNING)


def main() -> None:
    event_fd = os.dup(1)
    os.dup2(2, 1)
    # If the supervisor is SIGKILLed, its engine must not live on holding the credentials
    # (where there is no lifeline, stdin EOF still ends the child).
    die_with_parent(signal.SIGKILL)
    # neonize runs `os.popen("uname -a")` twice while loading its library and never closes
    # the pipe, so each `sh` would stay a zombie for the life of the engine. This process
    # starts no children of its own that it waits for, so let the kernel reap them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    # The credential store is created by the Go side: owner-only from the first byte.
    os.umask(0o077)
    config = json.loads(sys.stdin.buffer.readline() or b"{}")
    # Before neonize is imported: its import calls logging.basicConfig(INFO), which is a no-op
    # once the root logger has our handler.
    configure_logging(config.get("log_level", "WARNING"), "json")
    logging.getLogger("whatsmeow").setLevel(config.get("log_level", "WARNING"))
    # neonize warns about a missing ffmpeg on every connect; media is not our business.
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)
    try:
        _preflight()
        child = EngineChild(config, event_fd)
        # Not asyncio.run(): its clean-up joins the default executor, where one thread still
        # blocks reading stdin (open until we are gone) and neonize's Neonize() call may still
        # be unwinding. That join held every stopping child until the supervisor's SIGKILL.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(child.run())
    except EngineUnavailable as exc:
        gone = p.EngineExited(expected=False, reason="engine_unavailable", detail=str(exc))
        os.write(event_fd, encode_event(gone))
        os._exit(3)
    except Exception:
        log.exception("engine child failed")
        os._exit(1)
    # Leave without joining any thread (Neonize()'s worker thread is non-daemon).
    os._exit(0)


if __name__ == "__main__":
    main()
