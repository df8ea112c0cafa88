"""A node WhatsApp ended the stream with, made safe to keep in a reason's detail.

WhatsApp's logouts arrive as ``<stream:error code="401"><conflict type="device_removed"/>
</stream:error>`` (or a ``<failure reason=...>`` at login), and whatsmeow hands on only the
code and the conflict type (PR #1211). Whatever else WhatsApp put in the node is the only
clue to an unexplained unlink, so the engine keeps the whole node, as whatsmeow renders it
(``Node.XMLString``: ``<tag key="value">content</tag>``), after :func:`sanitise`:

- a JID's user part (a phone number or LID) becomes ``…``: ``…@s.whatsapp.net``;
- any other run of 6 or more digits becomes ``…`` (a phone number, a registration id), except
  in the ``t`` attribute, a unix time;
- hex or base64 runs of 16 or more characters mixing letters and digits, or of 32 or more
  (keys, signatures, tokens), become ``[N chars]``;
- the result is cut to ``MAX_NODE`` characters.

Structure, tag and attribute names, codes and short words stay: they are what explains it.
"""

from __future__ import annotations

import re

MAX_NODE = 2000
MASK = "…"

_ATTRIBUTE = re.compile(r'([\w:-]+)="([^"]*)"')
_JID = re.compile(r"[\w.:-]+@(s\.whatsapp\.net|lid|g\.us|c\.us|broadcast|newsletter|bot)\b")
_SECRET = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
_DIGITS = re.compile(r"\d{6,}")


def _mask_secrets(text: str) -> str:
    def secret(match: re.Match[str]) -> str:
        run = match.group(0)
        mixed = any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
        if not mixed and len(run) < 32:
            return run  # a long word (device_removed_by_primary) or number, not a key
        return f"[{len(run)} chars]"

    return _SECRET.sub(secret, text)


def _sanitise_text(text: str, *, keep_digits: bool = False) -> str:
    text = _JID.sub(lambda m: f"{MASK}@{m.group(1)}", text)
    text = _mask_secrets(text)
    return text if keep_digits else _DIGITS.sub(MASK, text)


def sanitise(node_xml: str) -> str:
    """``node_xml`` without keys, phone numbers or JIDs' user parts (see the module doc)."""
    parts: list[str] = []
    at = 0
    for tag in re.finditer(r"<[^<>]*>", node_xml):
        parts.append(_sanitise_text(node_xml[at : tag.start()]))  # content between tags
        parts.append(
            _ATTRIBUTE.sub(
                lambda m: (
                    f'{m.group(1)}="'
                    + _sanitise_text(m.group(2), keep_digits=m.group(1) == "t")
                    + '"'
                ),
                tag.group(0),
            )
        )
        at = tag.end()
    parts.append(_sanitise_text(node_xml[at:]))
    clean = "".join(parts).strip()
    return clean if len(clean) <= MAX_NODE else clean[: MAX_NODE - 1] + MASK
