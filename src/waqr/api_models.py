"""The models that the bot and the bridge both speak.

Neutral ground: this module imports neither ``waqr.bot`` nor ``waqr.bridge``, so the public
bridge never loads the bot's app (and its session core) just to validate a body, and both
sides validate the same input the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Query
from pydantic import BaseModel, Field, field_validator

from waqr.errors import InvalidPhoneNumber
from waqr.phone import PHONE_PATTERN, parse_e164


class PairCodeRequest(BaseModel):
    """Body of ``POST /pair-code`` at the bot and ``POST /admin/wa/pair-code`` at the bridge.
    ``phone`` arrives as +E.164 and is held as its digits (no '+')."""

    phone: str = Field(
        max_length=32,
        description="The WhatsApp account's number in international form: '+', the country "
        "code and number, 8 to 15 ASCII digits in all; spaces, dots, dashes and brackets "
        "between them are ignored. Anything else is 422 invalid_request.",
        examples=["+4915112345678"],
        # Documented, not enforced by pydantic: parse_e164 says what exactly is wrong.
        json_schema_extra={"pattern": PHONE_PATTERN},
    )

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        try:
            return parse_e164(value)
        except InvalidPhoneNumber as exc:
            raise ValueError(str(exc)) from None


class ErrorBody(BaseModel):
    """Every error answer of the bot and the bridge: a stable code and a sentence for a
    person (see waqr.http_errors); some carry more fields, such as ``status``."""

    error: str = Field(description="A stable, machine-readable code.", examples=["bot_timeout"])
    detail: str = Field(description="What went wrong, in plain words.")


# Why each error status is answered, and an example body: an OpenAPI ``responses`` table.
ErrorTable = dict[int, tuple[str, dict[str, Any]]]

# The send routes' retry key, on the bot and on the bridge alike.
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=200,
        description="A retry with the same key returns the first answer, sends nothing.",
    ),
]

# The inbox listing's page (``GET /messages`` at the bot, ``GET /admin/wa/messages`` at the
# bridge). ``seq`` is a SQLite INTEGER: a larger cursor cannot even be compared with it.
MAX_SEQ = 2**63 - 1
InboxAfter = Annotated[
    int,
    Query(
        ge=0,
        le=MAX_SEQ,
        description="Only messages after this ``seq`` (the last one you hold); 0: from the oldest.",
    ),
]
InboxLimit = Annotated[int, Query(ge=1, le=500, description="At most this many messages.")]


def error_responses(table: ErrorTable, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for ``statuses``, each an ErrorBody with its example.
    Naming 422 here also keeps FastAPI from documenting its own HTTPValidationError body,
    which waqr never answers (waqr.http_errors flattens it into an ErrorBody)."""
    return {
        status: {
            "model": ErrorBody,
            "description": table[status][0],
            "content": {"application/json": {"example": table[status][1]}},
        }
        for status in sorted(statuses)
    }


class SendMessageRequest(BaseModel):
    """Body of ``POST /messages`` at the bot and ``POST /admin/wa/messages`` at the bridge."""

    to: str = Field(
        max_length=64,
        description="The recipient: +E.164 ('+', country code, number) or a JID "
        "(4915112345678@s.whatsapp.net, or a group's <id>@g.us).",
        examples=["+4915112345678"],
    )
    text: str = Field(
        max_length=70000,  # the exact limit (65536) is checked with a clearer error
        description="The message text, 1 to 65536 characters.",
        examples=["Your order has shipped."],
    )
    reply_to: str | None = Field(
        default=None, max_length=128, description="The id of a message to quote."
    )
