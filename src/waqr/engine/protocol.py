"""The Engine protocol: what the bot's session logic may ask of a WhatsApp engine, and the
typed events an engine reports. One Engine object lives for one connection attempt; a
reconnect makes a fresh one (see ``supervisor.py`` for why)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QrIssued:
    """A QR code is on offer. ``lifetime`` is how long whatsmeow shows it, in seconds, counted
    from ``issued_at`` (unix seconds, stamped when whatsmeow handed the code over, so that a
    slow hop between processes never stretches its life)."""

    code: str
    lifetime: float
    issued_at: float


@dataclass(frozen=True, slots=True)
class PairSuccess:
    """The phone accepted the link; the engine now restarts the stream and logs in."""

    jid: str


@dataclass(frozen=True, slots=True)
class Connected:
    jid: str | None
    push_name: str | None


@dataclass(frozen=True, slots=True)
class LoggedOut:
    """WhatsApp unlinked the device. ``code`` is WhatsApp's reason (401, 403, 406, ...);
    ``node`` the ``<stream:error>`` or ``<failure>`` it sent, whole but sanitised (see
    ``stream_node.py``), when the engine saw it."""

    code: int
    on_connect: bool
    node: str | None = None


@dataclass(frozen=True, slots=True)
class TemporaryBan:
    ban_code: int
    expires_in: float


@dataclass(frozen=True, slots=True)
class ClientOutdated:
    pass


@dataclass(frozen=True, slots=True)
class ConnectFailure:
    """The server refused the login with a ``<failure reason=...>`` this engine will not retry."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class ServerUnavailable:
    """WhatsApp refused a login with a 5xx; the engine retries by itself."""

    code: int


@dataclass(frozen=True, slots=True)
class StreamError:
    code: str
    node: str | None = None  # the whole <stream:error>, sanitised


@dataclass(frozen=True, slots=True)
class StreamReplaced:
    """440 ``<conflict type="replaced"/>``: another client logged in with these credentials."""

    node: str | None = None  # the whole <stream:error>, sanitised


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The socket closed. whatsmeow carries no reason here; the events before it do."""


@dataclass(frozen=True, slots=True)
class KeepAliveTimeout:
    """A keepalive ping to WhatsApp went unanswered. ``last_success`` is when one last got an
    answer (unix seconds; 0 when the engine does not know)."""

    error_count: int
    last_success: float = 0.0


@dataclass(frozen=True, slots=True)
class KeepAliveRestored:
    pass


@dataclass(frozen=True, slots=True)
class DialFailed:
    """The engine's connect ended with an error before any event (DNS, refused, proxy answer,
    TLS). whatsmeow does not retry this by itself."""

    error: str


@dataclass(frozen=True, slots=True)
class EngineExited:
    """The engine child is gone. ``expected`` is False for a crash, a signal or a watchdog kill;
    ``reason`` is a reason code (``engine_crashed``, ``connect_timeout``, ...)."""

    expected: bool
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A text message WhatsApp delivered to the engine. ``chat`` and ``sender`` are JIDs
    (``user@server``); ``timestamp`` unix seconds; ``quoted_id`` the id of the message it
    replies to; ``from_me`` True when this account sent it from another device.

    ``delivery`` numbers the engine's obligation: the engine's handler waits until the
    receiver calls :meth:`Engine.persisted` with it. (With neonize 0.5.2 that wait does not
    hold whatsmeow's delivery receipt; see ``child.py``, ``hold_message_acks``.)"""

    id: str
    chat: str
    sender: str
    push_name: str
    text: str
    timestamp: float
    quoted_id: str | None
    from_me: bool
    delivery: int


@dataclass(frozen=True, slots=True)
class ReceiptReceived:
    """WhatsApp's word on a message this account sent: ``kind`` is ``delivered``, ``read``
    or ``played`` (one event per message id; whatsmeow groups them)."""

    message_id: str
    kind: str
    chat: str
    timestamp: float


EngineEvent = (
    QrIssued
    | PairSuccess
    | Connected
    | LoggedOut
    | TemporaryBan
    | ClientOutdated
    | ConnectFailure
    | ServerUnavailable
    | StreamError
    | StreamReplaced
    | Disconnected
    | KeepAliveTimeout
    | KeepAliveRestored
    | DialFailed
    | EngineExited
    | MessageReceived
    | ReceiptReceived
)


class Engine(Protocol):
    """One connection attempt of one session's WhatsApp engine."""

    pid: int | None  # the engine's OS process, when it has one of its own

    async def start(self) -> None:
        """Begin connecting. Returns at once; progress arrives as events."""

    async def stop(self) -> None:
        """Disconnect and release everything. Never hangs (watchdog-bounded)."""

    async def logout(self) -> None:
        """Unlink the device at WhatsApp (raises EngineCommandFailed when WhatsApp is not
        reachable). Credentials are removed by the caller, not here."""

    async def pair_phone(self, phone_digits: str) -> str:
        """Ask for an 8-character pairing code for ``phone_digits`` (E.164 without '+')."""

    async def ping(self) -> None:
        """Prove the engine still answers (its process, its event loop and its FFI lock).
        Raises EngineCommandFailed when it does not answer in time; an engine that fails a
        ping or any other command within its timeout is killed and ends with
        ``EngineExited(reason="engine_unresponsive")``."""

    async def send_text(self, to: str, text: str, reply_to: str | None = None) -> str:
        """Send ``text`` to the JID ``to`` (quoting message ``reply_to``); returns WhatsApp's
        message id once the server acknowledged it. Raises EngineCommandFailed."""

    async def persisted(self, delivery: int) -> None:
        """Tell the engine that the message of ``MessageReceived.delivery`` is stored: its
        handler may now return and let WhatsApp's acknowledgement go."""

    def events(self) -> AsyncIterator[EngineEvent]:
        """The engine's events, ending after EngineExited."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What an engine needs to connect."""

    store_path: str
    proxy: str | None = None
    log_level: str = "WARNING"


EngineFactory = Callable[[EngineConfig], Engine]
