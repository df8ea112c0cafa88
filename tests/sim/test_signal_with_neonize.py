"""End to end: a simulated contact's Signal messages decrypted by the real engine.

The real neonize client (whatsmeow, go.mau.fi/libsignal) links through the simulator and uploads
its prekeys; a contact opens a session from the bundle the server keeps for it, and the server
relays the contact's ``pkmsg`` in a ``<message>`` stanza. The engine reporting the text is the
proof that X3DH, the ratchet, the wire format, the padding and the waE2E protobuf all match.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.sim.test_simulator_with_neonize import STEP_TIMEOUT, Bot, pair_by_qr, start_bot
from waqr.sim.app import Simulator
from waqr.sim.node import JID
from waqr.sim.signal.contact import Contact
from waqr.sim.signal.prekeys import PublishedKeys
from waqr.sim.users import message_stanza

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@contextlib.asynccontextmanager
async def linked_engine(
    simulator: Simulator, neonize_path: Path, tmp_path: Path
) -> AsyncIterator[tuple[Bot, JID, PublishedKeys]]:
    """A real engine linked by QR, with the prekeys it uploaded after it connected (whatsmeow
    does so at once); stopped at the end."""
    store = tmp_path / "bot" / "session.db"
    store.parent.mkdir()
    bot = await start_bot(simulator, neonize_path, store, "engine.log")
    try:
        engine = JID.parse(await pair_by_qr(simulator, bot))
        async with asyncio.timeout(STEP_TIMEOUT):
            while (device := simulator.world.device(engine.user, engine.device)) is None or (
                device.signal_keys is None
            ):
                await asyncio.sleep(0.2)
        yield bot, engine, device.signal_keys
    finally:
        await bot.stop()


async def test_the_engine_decrypts_a_contacts_messages(
    simulator: Simulator, neonize_path: Path, tmp_path: Path
) -> None:
    async with linked_engine(simulator, neonize_path, tmp_path) as (bot, engine, keys):
        assert len(keys.one_time) >= 5  # whatsmeow keeps at least MinPreKeyCount on the server

        contact = Contact.create("+49 151 1111 2222")
        contact.start_session(engine, keys.hand_out(engine.device))
        (session,) = simulator.world.sessions_of(engine)
        sent = [
            (contact.encrypt_text(engine, "Hallo from a simulated contact"), None),
            (contact.encrypt_text(engine, "sent second, arrives last"), None),
            (contact.encrypt_text(engine, "a reply", quoted_id="3EB0C0FFEE"), "3EB0C0FFEE"),
        ]
        assert [c.kind for c, _ in sent] == ["pkmsg"] * 3  # the engine has not answered
        texts = ["Hallo from a simulated contact", "sent second, arrives last", "a reply"]
        for index in (0, 2, 1):  # out of order: the engine keeps the skipped message key
            ciphertext, quoted = sent[index]
            await session.send_node(message_stanza(contact, f"3EB0{index:016X}", ciphertext))
            received = await bot.next_event("message", "undecryptable")
            assert received["event"] == "message", received
            assert received["text"] == texts[index]
            assert received["quoted_id"] == (quoted or "")
            assert received["sender"] == f"{contact.phone}@s.whatsapp.net"
            assert received["from_me"] is False
        assert bot.log_lines("ERROR") == []


async def test_the_engine_and_a_contact_hold_a_conversation(
    simulator: Simulator, neonize_path: Path, tmp_path: Path
) -> None:
    async with linked_engine(simulator, neonize_path, tmp_path) as (bot, engine, _):
        contact = simulator.world.contact("+49 151 3333 4444")
        for turn in range(3):  # each turn is a ratchet step on both sides
            await bot.command(cmd="send", to=contact.phone, text=f"engine says {turn}")
            sent = await bot.next_event("sent", "send_error")
            assert sent["event"] == "sent", sent
            delivered = await bot.next_event("receipt")
            assert (delivered["ids"], delivered["type"]) == ([sent["id"]], "DELIVERED")
            async with httpx.AsyncClient(base_url=simulator.control_url) as api:
                read = await api.post(
                    f"/contacts/{contact.phone}/read", json={"id": sent["id"]}, timeout=STEP_TIMEOUT
                )
            assert read.status_code == 200, read.text
            seen = await bot.next_event("receipt")
            assert (seen["ids"], seen["type"]) == ([sent["id"]], "READ")
            received = contact.inbox[-1]
            assert received.message_id == sent["id"]
            assert received.message.text == f"engine says {turn}"
            assert received.sender == engine

            async with httpx.AsyncClient(base_url=simulator.control_url) as api:
                reply = await api.post(
                    f"/contacts/{contact.phone}/send",
                    json={"text": f"contact answers {turn}", "reply_to": sent["id"]},
                    timeout=STEP_TIMEOUT,
                )
            assert reply.status_code == 200, reply.text
            assert reply.json()["delivered_to"] == [str(engine)]
            answer = await bot.next_event("message", "undecryptable")
            assert answer["event"] == "message", answer
            assert (answer["text"], answer["quoted_id"]) == (f"contact answers {turn}", sent["id"])
            # The engine opened the session, so the contact's replies travel as plain msg.
            state = contact.store.sessions[f"{engine.user}:{engine.device}"].current
            assert state is not None and state.pending_pre_key is None
        assert len(contact.inbox) == 3
