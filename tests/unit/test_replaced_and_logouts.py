"""440 replaced, logouts and 405 as the session reports them: one replacement is reconnected,
a storm of them stops; a logout keeps WhatsApp's node; a 405 names the engine build."""

from __future__ import annotations

import pytest

from tests.scripted_engine import EngineScript
from tests.unit.session_fixtures import ME, linked, make_credentials, until
from waqr.bot.session import Session
from waqr.bot.states import State
from waqr.engine import protocol as p
from waqr.engine.version import EngineVersion

pytestmark = pytest.mark.timeout(20)

REPLACED_NODE = '<stream:error><conflict type="replaced"/></stream:error>'
REMOVED_NODE = '<stream:error code="401"><conflict type="device_removed"/></stream:error>'


async def test_one_replaced_stream_reconnects_keeping_credentials(make_session, store) -> None:
    session, script = await linked(make_session, store)
    script.current.emit(p.StreamReplaced(node=REPLACED_NODE))
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.CONNECTED)
    assert store.has_credentials()
    reason = session.status()["lastDisconnectReason"]
    assert reason["code"] == "stream_replaced"
    assert "1 time(s) within 600 s" in reason["detail"]
    assert REPLACED_NODE in reason["detail"]


async def replaced_times(session: Session, script: EngineScript, count: int) -> None:
    """The running engine is replaced ``count`` times, each fresh engine connecting first."""
    for n in range(count):
        await until(lambda: session.state is State.CONNECTED)
        script.current.emit(p.StreamReplaced())
        if n + 1 < count:
            await script.wait_for_engine(n + 2)


async def test_the_replaced_limit_within_the_window_stops_in_failed(make_session, store) -> None:
    session, script = await linked(make_session, store, replaced_limit=3)
    await replaced_times(session, script, 3)
    await until(lambda: session.state is State.FAILED)
    reason = session.status()["lastDisconnectReason"]
    assert reason["code"] == "replaced_repeatedly"
    assert "Two clients hold the same credentials" in reason["message"]
    assert "WAQR_DATA_DIR" in reason["hint"]
    assert "3 x 440 replaced" in reason["detail"]
    assert len(script.engines) == 3  # no fourth engine fighting for the device
    assert session.status()["retrying"] is False
    assert store.has_credentials()


async def test_replacements_further_apart_than_the_window_never_stop(
    make_session, store, clock
) -> None:
    session, script = await linked(make_session, store, replaced_limit=2, replaced_window=60)
    for n in range(4):
        await until(lambda: session.state is State.CONNECTED)
        script.current.emit(p.StreamReplaced())
        await script.wait_for_engine(n + 2)
        clock.advance(61)
    await until(lambda: session.state is State.CONNECTED)
    assert session.status()["lastDisconnectReason"]["code"] == "stream_replaced"


async def test_an_operator_reconnect_counts_replacements_afresh(make_session, store) -> None:
    session, script = await linked(make_session, store, replaced_limit=2)
    await replaced_times(session, script, 2)
    await until(lambda: session.state is State.FAILED)
    await session.reconnect()
    await script.wait_for_engine(3)
    await until(lambda: session.state is State.CONNECTED)
    script.current.emit(p.StreamReplaced())  # the first after the operator acted
    await script.wait_for_engine(4)
    await until(lambda: session.state is State.CONNECTED)


async def test_a_logout_keeps_whatsapps_node_with_link_age_and_route(make_session, store) -> None:
    session, script = await linked(make_session, store, via_proxy=True)
    script.on_start = []
    script.current.emit(p.LoggedOut(code=401, on_connect=False, node=REMOVED_NODE))
    await until(lambda: session.state is State.LOGGED_OUT)
    detail = session.status()["lastDisconnectReason"]["detail"]
    assert f"node: {REMOVED_NODE}" in detail
    assert "through WA_PROXY" in detail
    assert "linked before this run" in detail  # linked in an earlier run: age unknown


async def test_a_logout_right_after_linking_says_how_soon(make_session, store) -> None:
    script = EngineScript(p.QrIssued(code="2@q,r", lifetime=60.0, issued_at=0))
    session = make_session(script)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    make_credentials(store)
    script.current.emit(p.PairSuccess(jid="15550001111@s.whatsapp.net"), ME)
    await until(lambda: session.state is State.CONNECTED)
    script.on_start = []
    script.current.emit(p.LoggedOut(code=401, on_connect=False, node=REMOVED_NODE))
    await until(lambda: session.state is State.LOGGED_OUT)
    detail = session.status()["lastDisconnectReason"]["detail"]
    assert "0 s after linking" in detail or "1 s after linking" in detail
    assert "direct connection" in detail


BUILD = EngineVersion("0.5.2", "v0.0.0-20260921121126-35ae40906e74", "2.3000.1047769893")


@pytest.mark.parametrize("refusal", [p.ClientOutdated(), p.ConnectFailure(code=405, message="")])
async def test_an_outdated_client_names_the_engine_build_and_the_upgrade(
    store, clock, refusal
) -> None:
    from tests.unit.session_fixtures import FAST
    from waqr.bot.policy import SessionPolicy

    make_credentials(store)
    script = EngineScript(refusal)
    session = Session(
        "default", store, script, SessionPolicy(**FAST), clock=clock, engine_version=BUILD
    )
    await session.start()
    try:
        await until(lambda: session.state is State.FAILED)
        status = session.status()
        reason = status["lastDisconnectReason"]
        assert reason["code"] == "client_outdated"
        assert "WhatsApp Web 2.3000.1047769893 (neonize 0.5.2" in reason["message"]
        assert "pip install -U waqr" in reason["hint"]
        assert status["engine"]["version"]["whatsappWeb"] == "2.3000.1047769893"
    finally:
        await session.close()
