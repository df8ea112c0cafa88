"""A linked device's Signal side writing to a simulated contact through the server's relay."""

from __future__ import annotations

from dataclasses import dataclass, field

from waqr.sim.node import JID, Node
from waqr.sim.relay import deliver
from waqr.sim.signal import ProtocolStore, SessionCipher, encode_text
from waqr.sim.signal.contact import Contact
from waqr.sim.state import LinkedDevice, World

ACCOUNT = "15550001111"  # the default phone of the world fixture (conftest.py)


def link_engine(world: World, device: int = 7) -> LinkedDevice:
    """A device linked to ACCOUNT, with no connection and no uploaded keys yet."""
    linked = LinkedDevice(ACCOUNT, device, world.phone(ACCOUNT).lid_user, bytes(32), bytes(32))
    world.link(linked)
    return linked


class DeviceWriter:
    """Encrypts as a device would (its own Signal store) and hands ``<message>`` to the relay."""

    def __init__(self, world: World, contact: Contact, device: JID) -> None:
        self.world, self.contact, self.device = world, contact, device
        self._cipher = SessionCipher(ProtocolStore.generate(), "contact")
        self._cipher.start_session(contact.published.hand_out(0))

    async def send(self, message_id: str, text: str) -> list[Node]:
        """Relay one text addressed to the contact's LID; the server's replies to the device."""
        ciphertext = self._cipher.encrypt(encode_text(text))
        enc = Node("enc", {"v": "2", "type": ciphertext.kind}, ciphertext.serialized)
        to = Node("to", {"jid": self.contact.lid}, [enc])
        attrs = {"id": message_id, "to": self.contact.lid}
        message = Node("message", attrs, [Node("participants", content=[to])])  # type: ignore[arg-type]
        return await deliver(self.world, message, self.device)


@dataclass
class CapturingSession:
    """A logged-in connection that keeps what the server sends it (the unit-test stand-in for
    server.Session; the real one is exercised in test_signal_with_neonize.py)."""

    device_jid: JID
    conn_id: int = 99
    kind: str = "login"
    caught_up: bool = True  # its offline queue was handed over (server.Session)
    sent: list[Node] = field(default_factory=list)

    async def send_node(self, node: Node) -> None:
        self.sent.append(node)
