"""What WABinary carries: ``Node`` (tag, attributes, content) and ``JID`` addresses, doc §5."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

DEFAULT_SERVER: Final = "s.whatsapp.net"


@dataclass(frozen=True)
class JID:
    """A WhatsApp address: ``user[.agent][:device]@server``."""

    user: str
    server: str
    device: int = 0
    agent: int = 0
    integrator: int = 0

    def __str__(self) -> str:
        if not self.user:
            return self.server
        agent = f".{self.agent}" if self.agent else ""
        device = f":{self.device}" if self.device else ""
        return f"{self.user}{agent}{device}@{self.server}"

    @property
    def bare(self) -> JID:
        """The same user without device/agent."""
        return JID(self.user, self.server)

    @classmethod
    def parse(cls, text: str) -> JID:
        """Read ``user[.agent][:device]@server`` (or a bare ``server``)."""
        if "@" not in text:
            return cls("", text)
        user, server = text.split("@", 1)
        device = agent = 0
        if ":" in user:
            user, device_text = user.split(":", 1)
            device = int(device_text)
        if "." in user:
            user, agent_text = user.split(".", 1)
            agent = int(agent_text)
        return cls(user, server, device, agent)


SERVER_JID: Final = JID("", DEFAULT_SERVER)

AttrValue = str | JID
Content = bytes | list["Node"] | None


@dataclass
class Node:
    """One WABinary node."""

    tag: str
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    content: Content = None

    @property
    def children(self) -> list[Node]:
        return self.content if isinstance(self.content, list) else []

    def child(self, tag: str) -> Node | None:
        """The first child with this tag."""
        return next((c for c in self.children if c.tag == tag), None)

    def attr(self, key: str) -> str:
        """An attribute as text ('' when absent); JIDs are rendered as strings."""
        value = self.attrs.get(key)
        return "" if value is None else str(value)

    def jid(self, key: str) -> JID | None:
        """An attribute that the wire carried as a JID."""
        value = self.attrs.get(key)
        return value if isinstance(value, JID) else None

    @property
    def data(self) -> bytes:
        """Byte content ('' when the node has children or nothing)."""
        return self.content if isinstance(self.content, bytes) else b""


def iq_result(request: Node, content: list[Node] | None = None) -> Node:
    """The server's ``result`` answer to a client iq (matched by id only, doc §7)."""
    return Node("iq", {"from": SERVER_JID, "id": request.attr("id"), "type": "result"}, content)


def iq_error(request: Node, code: int, text: str) -> Node:
    """The server's ``error`` answer to a client iq."""
    error = Node("error", {"code": str(code), "text": text})
    return Node("iq", {"from": SERVER_JID, "id": request.attr("id"), "type": "error"}, [error])
