"""What the page's Messages section says: incoming messages and the receipts of a test send,
as escaped HTML with test ids. No Streamlit here, so the words are testable without a browser.

The page is for the signed-in operator, so a chat's number is shown in full, as the bot gives
it; it is never logged. Everything a contact chose (their name, their text) is literal text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

# A person's chat JID; groups (@g.us) and hidden-number ids (@lid) are shown as they are.
PERSON_SERVER = "@s.whatsapp.net"
# The order a sent message goes through; "failed" ends it early.
RECEIPT_STEPS = ("queued", "sending", "sent", "delivered", "read")


def chat_label(chat: str) -> str:
    """``4915112345678@s.whatsapp.net`` as ``+4915112345678``; any other JID unchanged."""
    user, _, server = chat.partition("@")
    number = user.split(":", 1)[0]  # a device suffix (…:12@) is not part of the number
    if "@" + server == PERSON_SERVER and number.isascii() and number.isdigit():
        return "+" + number
    return chat


def message_time(timestamp: object) -> str:
    """A message's unix timestamp as UTC wall time; empty when there is none."""
    if not isinstance(timestamp, int | float) or timestamp <= 0:
        return ""
    try:
        moment = datetime.fromtimestamp(float(timestamp), UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def inbox_html(messages: Iterable[dict[str, Any]]) -> str:
    """The messages, newest first: who (number, and name when the contact set one), when,
    and the text."""
    rows = []
    for message in sorted(messages, key=lambda m: int(m.get("seq") or 0), reverse=True):
        who = chat_label(str(message.get("chat") or ""))
        if message.get("pushName"):
            who += f" · {message['pushName']}"
        when = message_time(message.get("timestamp"))
        rows.append(
            f'<div data-testid="waqr-message" data-seq="{int(message.get("seq") or 0)}" '
            'style="padding:0.5em 0;border-bottom:1px solid #e5e7eb">'
            f'<div style="color:#6b7280;font-size:0.85em">{html.escape(who)}'
            f"{' · ' + when if when else ''}</div>"
            f'<div data-testid="waqr-message-text" style="white-space:pre-wrap">'
            f"{html.escape(str(message.get('text') or ''))}</div></div>"
        )
    if not rows:
        return '<div data-testid="waqr-inbox" style="color:#6b7280">No messages yet.</div>'
    return f'<div data-testid="waqr-inbox">{"".join(rows)}</div>'


def receipt_of(sent: dict[str, Any]) -> str:
    """Where a sent message is: its latest receipt (sent, delivered, read) once sent, else
    its status (queued, sending, failed)."""
    if sent.get("status") == "failed":
        return "failed"
    for step in (sent.get("receipt"), sent.get("status")):
        if step in RECEIPT_STEPS:
            return str(step)
    return "queued"


def furthest(*bodies: dict[str, Any]) -> dict[str, Any]:
    """Of several accounts of one sent message (the send's answer, a receipt event, a status
    read), the one furthest along: receipts only move forward, and a failure is final."""

    def rank(body: dict[str, Any]) -> int:
        step = receipt_of(body)
        return len(RECEIPT_STEPS) if step == "failed" else RECEIPT_STEPS.index(step)

    return max(bodies, key=rank)


def sent_html(sent: dict[str, Any]) -> str:
    """One test send: its id, recipient and where it is (a failure with the bot's reason)."""
    step = receipt_of(sent)
    said = step
    if step == "failed" and sent.get("error"):
        said = f"failed: {sent['error']}"
    colour = {"failed": "#b91c1c", "read": "#16a34a", "delivered": "#16a34a"}.get(step, "#6b7280")
    return (
        f'<div data-testid="waqr-sent" data-id="{html.escape(str(sent.get("id") or ""))}" '
        f'data-receipt="{html.escape(step)}" style="padding:0.3em 0">'
        f"<code>{html.escape(str(sent.get('id') or ''))}</code> to "
        f"{html.escape(chat_label(str(sent.get('to') or '')))}: "
        f'<b style="color:{colour}">{html.escape(said)}</b></div>'
    )
