"""Shared pieces for the session's unit tests: a clock tests can move, and a session factory
that closes what it made."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.scripted_engine import EngineScript
from waqr.bot.policy import SessionPolicy
from waqr.bot.session import Session
from waqr.bot.states import State
from waqr.bot.store import SessionStore
from waqr.engine import protocol as p


class Clock:
    """Real monotonic time plus whatever the test adds with ``advance``: backoffs of a few
    milliseconds pass by themselves, long deadlines pass when the test says so."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float, *sessions: Session) -> None:
        self.offset += seconds
        for session in sessions:
            session.check_deadlines()


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (value := predicate()):
            await asyncio.sleep(0.005)
    return value


def make_credentials(store: SessionStore) -> None:
    """What whatsmeow leaves behind once paired: a store with a device row."""
    store.auth_dir.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(store.db_path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS whatsmeow_device (jid TEXT)")
        db.execute("INSERT INTO whatsmeow_device VALUES ('15550001111.0:1@s.whatsapp.net')")


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path, "default")


@pytest.fixture
def clock() -> Clock:
    return Clock()


# Short backoffs so that retries happen in milliseconds; every other deadline is long, so it
# passes only when a test moves the clock.
FAST = {"backoff_min": 0.01, "backoff_max": 0.05}


@pytest.fixture
async def make_session(store: SessionStore, clock: Clock) -> AsyncIterator[Callable[..., Session]]:
    made: list[Session] = []

    def make(script: EngineScript, **policy: Any) -> Session:
        session = Session(
            "default", store, script, SessionPolicy(**{**FAST, **policy}), clock=clock
        )
        made.append(session)
        return session

    yield make
    for session in made:
        async with asyncio.timeout(10):
            await session.close()


# issued_at=0: stamped by the scripted engine when emitted.
QR1 = p.QrIssued(code="2@first,ref", lifetime=60.0, issued_at=0)
QR2 = p.QrIssued(code="2@second,ref", lifetime=20.0, issued_at=0)
ME = p.Connected(jid="15550001111@s.whatsapp.net", push_name="Bot")
LINKED = p.PairSuccess(jid="15550001111@s.whatsapp.net")


async def linked(
    make_session: Callable[..., Session], store: SessionStore, **policy: Any
) -> tuple[Session, EngineScript]:
    """A session with credentials whose engine has connected."""
    make_credentials(store)
    script = EngineScript(ME)
    session = make_session(script, **policy)
    await session.start()
    await until(lambda: session.state is State.CONNECTED)
    return session, script
