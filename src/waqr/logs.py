"""Structured logging: one line per event, secrets scrubbed.

The stdlib ``logging`` module is the plumbing (neonize and uvicorn log through it); this
module only adds a formatter. JSON lines are built with the stdlib ``json`` module: the
formatter must run :func:`waqr.redact.redact` over every value, which a ready-made JSON
formatter would not do for us, and it is a dozen lines.

Use ``log_event(logger, "event_name", key=value, ...)``: the event name is the message and
the keywords become fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from waqr.redact import redact

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: _clean(v) for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        text = f"{stamp} {record.levelname:<7} {record.name}: {redact(record.getMessage())}"
        if fields:
            text += " " + fields
        if record.exc_info:
            text += "\n" + redact(self.formatException(record.exc_info))
        return text


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Install our formatter on the root logger (replacing any basicConfig a library did)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # One line per HTTP request (httpx's client lines, uvicorn's access lines) drowns the
    # events that matter: a bridge polled by a UI logs several a second. They are DEBUG detail.
    for chatty in ("httpx", "uvicorn.access"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    # uvicorn's access log would print every poll of /qr; keep it at warning.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # sse_starlette logs every chunk it sends at DEBUG: message texts, QR payloads.
    logging.getLogger("sse_starlette").setLevel(logging.INFO)


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log one structured event. Field names that clash with LogRecord's own get a ``_``."""
    extra = {(f"{k}_" if k in _STANDARD_ATTRS else k): v for k, v in fields.items()}
    logger.log(level, event, extra=extra)
