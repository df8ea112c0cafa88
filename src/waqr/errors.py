"""The one exception hierarchy of waqr.

    WaqrError
    ├── ConfigError            a setting is missing or malformed; names the variable
    ├── DataDirLocked          another process already runs an engine on this data directory
    ├── InvalidPhoneNumber     a phone number that is not +E.164
    ├── NoQrAvailable          there is no live QR to show (carries the session state)
    ├── SessionBusy            the request does not fit the session's current state
    ├── SessionUnavailable     the session cannot take requests (stopping, or its actor died)
    ├── EngineError            the engine child failed us
    │   ├── EngineUnavailable  the neonize shared library or package cannot be loaded
    │   └── EngineCommandFailed a command sent to the engine child was answered with an error
    │       └── EngineUnresponsive  ...or not answered in time (the engine is recycled)
    └── BotError               the bridge could not get an answer from the bot
        ├── BotUnreachable     connection refused / reset / DNS: the bot is down
        ├── BotTlsFailed       the TLS handshake with the bot failed (untrusted certificate...)
        ├── BotTimeout         the bot did not answer within WAQR_BOT_TIMEOUT
        └── BotRejected        the bot answered with a 4xx/5xx (status and body kept)

Library errors (neonize, pydantic, OS errors) are converted into these at the boundary
where they are first met, with ``raise ... from exc``, so callers handle one tree.
"""

from __future__ import annotations


class WaqrError(Exception):
    """Base class of every error waqr raises on purpose."""


class ConfigError(WaqrError):
    """A setting is missing or malformed. The message names the environment variable."""


class StackFailed(WaqrError):
    """A part of ``waqr up`` could not start or died; the message names the part and why."""


class DataDirLocked(WaqrError):
    """Another live process holds the exclusive lock on a session's data directory."""

    def __init__(self, path: str, holder: str) -> None:
        super().__init__(
            f"data directory {path} is in use by {holder}; two engines on the same credentials "
            "make WhatsApp answer 'replaced' (440) and both flap. Stop the other process or "
            "point WAQR_DATA_DIR elsewhere."
        )
        self.path = path
        self.holder = holder


class InvalidPhoneNumber(WaqrError):
    """A phone number that is not in +E.164 form (``+`` then 8 to 15 digits)."""


class NoQrAvailable(WaqrError):
    """No live QR code exists right now."""

    def __init__(self, state: str) -> None:
        super().__init__(f"no QR code is available while the session is {state}")
        self.state = state


class SessionBusy(WaqrError):
    """The request cannot be served in the session's current state."""


class SessionUnavailable(WaqrError):
    """The session cannot serve requests now: the service is stopping, or its actor died."""


class EngineError(WaqrError):
    """The engine child process failed."""


class EngineUnavailable(EngineError):
    """neonize or its shared library cannot be loaded (never silently downloaded)."""


class EngineCommandFailed(EngineError):
    """The engine child answered a command with an error."""


class EngineUnresponsive(EngineCommandFailed):
    """The engine did not answer a command within its bound; it is replaced."""


class BotError(WaqrError):
    """The bridge could not get a usable answer from the bot."""


class BotUnreachable(BotError):
    """The bot does not accept connections."""


class BotTlsFailed(BotError):
    """The bot could be reached but the TLS handshake failed: its certificate is not trusted
    (WAQR_BOT_CA_FILE), names another host, or it does not speak TLS at all."""


class BotTimeout(BotError):
    """The bot accepted the request but did not answer in time."""


class BotRejected(BotError):
    """The bot answered with an error; the bridge passes status and body on."""

    def __init__(self, status_code: int, body: dict[str, object]) -> None:
        super().__init__(str(body.get("detail") or body.get("error") or status_code))
        self.status_code = status_code
        self.body = body


class SendRefused(WaqrError):
    """A send the bot will not accept: ``status`` and ``code`` for the HTTP answer, ``extra``
    fields for its body (``state`` of a session not linked), ``retry_after`` seconds when
    rate limited."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        retry_after: int | None = None,
        **extra: object,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.extra = extra
