"""The session, driven by a scripted engine: linking, reconnects, logouts, refusals."""

from __future__ import annotations

import asyncio

import pytest

from tests.scripted_engine import EngineScript
from tests.unit.session_fixtures import LINKED, ME, QR1, QR2, linked, make_credentials, until
from waqr.bot.states import State
from waqr.engine import protocol as p
from waqr.errors import SessionBusy

pytestmark = pytest.mark.timeout(20)


async def test_a_new_session_offers_the_engines_qr_with_its_lifetime(make_session, clock) -> None:
    session = make_session(EngineScript(QR1))
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    assert session.qr_payload() == {"status": "qr_ready", "qr": "2@first,ref", "expires_in": 60.0}
    clock.advance(45)
    assert session.qr_payload()["expires_in"] == 15.0


async def test_a_qr_lives_from_when_the_engine_issued_it_not_from_when_it_arrived(
    make_session,
) -> None:
    import time

    issued_two_seconds_ago = p.QrIssued(code="2@old,ref", lifetime=20.0, issued_at=time.time() - 2)
    session = make_session(EngineScript(issued_two_seconds_ago))
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    assert session.qr_payload()["expires_in"] <= 18.0


async def test_rotated_qr_replaces_the_old_one_at_once(make_session, clock) -> None:
    script = EngineScript(QR1)
    session = make_session(script)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    clock.advance(60)
    script.current.emit(QR2)
    await until(lambda: session.qr_payload()["qr"] == "2@second,ref")
    assert session.qr_payload()["expires_in"] == 20.0


async def test_expired_qr_is_never_served(make_session, clock) -> None:
    session = make_session(EngineScript(QR1))
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    clock.offset += 61  # moved without waking the session: the read alone must refuse it
    assert session.current_qr() is None
    assert session.qr_payload() == {"status": "not_ready", "qr": None, "expires_in": None}


async def test_scan_leads_to_connected_with_the_account(make_session, store) -> None:
    script = EngineScript(QR1)
    session = make_session(script)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    make_credentials(store)
    script.current.emit(LINKED, ME)
    await until(lambda: session.state is State.CONNECTED)
    status = session.status()
    assert status["connected"] is True
    assert status["account"] == {"jid": "15550001111@s.whatsapp.net", "pushName": "Bot"}
    assert session.qr_payload() == {"status": "connected", "qr": None, "expires_in": None}


async def test_reconnect_keeps_credentials(make_session, store) -> None:
    session, script = await linked(make_session, store)
    assert (await session.reconnect()).started is True
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.CONNECTED)
    assert store.has_credentials()
    assert script.engines[0].stopped


async def test_overlapping_reconnects_coalesce_into_one_engine_restart(make_session, store) -> None:
    session, script = await linked(make_session, store)
    script.on_start = []
    results = await asyncio.gather(*(session.reconnect() for _ in range(10)))
    second = await script.wait_for_engine(2)
    results += await asyncio.gather(*(session.reconnect() for _ in range(10)))
    assert [r.started for r in results].count(True) == 1
    second.emit(ME)
    await until(lambda: session.state is State.CONNECTED)
    assert (await session.reconnect()).started is True  # a new request once it settled
    await script.wait_for_engine(3)


async def test_reset_wipes_credentials_and_starts_a_fresh_link(make_session, store) -> None:
    session, script = await linked(make_session, store)
    script.on_start = [QR1]
    await session.reconnect(reset=True)
    await until(lambda: session.state is State.QR_READY)
    assert script.engines[0].logged_out  # unlinked at WhatsApp first
    assert not store.db_path.exists()
    assert session.status()["hasCredentials"] is False


async def test_logout_unlinks_at_whatsapp_then_wipes(make_session, store) -> None:
    session, script = await linked(make_session, store)
    first = script.current
    script.on_start = [QR1]
    assert (await session.logout()).unlinked is True
    assert first.logged_out
    await until(lambda: session.state is State.QR_READY)
    assert not store.db_path.exists()
    assert session.status()["lastDisconnectReason"]["code"] == "logout_requested"


async def test_logout_while_offline_still_wipes_locally(make_session, store) -> None:
    make_credentials(store)
    script = EngineScript(ME)
    script.logout_fails = True
    session = make_session(script)
    await session.start()
    await until(lambda: session.state is State.CONNECTED)
    script.on_start = [QR1]
    assert (await session.logout()).unlinked is False
    await until(lambda: session.state is State.QR_READY)
    assert not store.db_path.exists()


async def test_failed_dial_is_reported_and_retried_with_backoff(make_session) -> None:
    error = "proxyconnect tcp: dial tcp 127.0.0.1:9: connect: connection refused"
    script = EngineScript(p.DialFailed(error=error))
    session = make_session(script, via_proxy=True)
    await session.start()
    await until(lambda: session.state is State.DISCONNECTED)
    reason = session.status()["lastDisconnectReason"]
    assert reason["code"] == "connection_failure"
    assert reason["detail"] == error
    assert "WA_PROXY" in reason["hint"]
    await script.wait_for_engine(3)


async def test_status_says_when_the_next_retry_comes(make_session) -> None:
    script = EngineScript(p.DialFailed(error="connection refused"))
    session = make_session(script, backoff_min=30, backoff_max=30)
    await session.start()
    status = await until(lambda: (s := session.status())["status"] == "disconnected" and s)
    assert status["retrying"] is True
    assert status["nextRetryAt"] is not None
    await asyncio.sleep(0.05)
    assert len(script.engines) == 1  # it waits for its backoff


async def test_crashed_engine_is_replaced_and_credentials_kept(make_session, store) -> None:
    session, script = await linked(make_session, store)
    script.current.crash()
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.CONNECTED)
    assert session.status()["lastDisconnectReason"]["code"] == "engine_crashed"
    assert store.has_credentials()


async def test_dropped_connection_waits_for_the_engine_then_replaces_it(
    make_session, store, clock
) -> None:
    session, script = await linked(make_session, store, reconnect_grace=30)
    script.on_start = []
    script.current.emit(p.Disconnected())
    status = await until(lambda: (s := session.status())["status"] == "disconnected" and s)
    assert status["lastDisconnectReason"]["code"] == "connection_lost"
    assert status["retrying"] is True  # the engine's own reconnect, within its grace
    await asyncio.sleep(0.05)
    assert len(script.engines) == 1
    clock.advance(31, session)
    second = await script.wait_for_engine(2)
    second.emit(ME)
    await until(lambda: session.state is State.CONNECTED)
    assert store.has_credentials()


async def test_engine_reconnecting_by_itself_keeps_the_same_engine(make_session, store) -> None:
    session, script = await linked(make_session, store)
    script.current.emit(p.Disconnected(), ME)
    await until(lambda: session.state is State.CONNECTED and session.reason is not None)
    assert len(script.engines) == 1


async def test_remote_logout_wipes_and_offers_a_fresh_qr(make_session, store) -> None:
    session, script = await linked(make_session, store)
    script.on_start = [QR1]
    script.current.emit(p.LoggedOut(code=401, on_connect=False))
    await until(lambda: session.state is State.QR_READY)
    assert not store.db_path.exists()
    assert session.status()["lastDisconnectReason"]["code"] == "logged_out"


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (p.ClientOutdated(), "client_outdated"),
        (p.LoggedOut(code=403, on_connect=True), "main_device_gone"),
        (p.LoggedOut(code=406, on_connect=True), "unknown_logout"),
        (p.TemporaryBan(ban_code=1, expires_in=3600), "temp_banned"),
        (p.ConnectFailure(code=409, message="bad ua"), "bad_user_agent"),
    ],
)
async def test_refusals_that_need_an_operator_end_in_failed(
    make_session, store, event, code
) -> None:
    make_credentials(store)
    script = EngineScript(event)
    session = make_session(script)
    await session.start()
    await until(lambda: session.state is State.FAILED)
    reason = session.status()["lastDisconnectReason"]
    assert reason["code"] == code
    assert reason["hint"]
    await asyncio.sleep(0.1)
    assert len(script.engines) == 1  # no retry loop against a refusal
    assert session.status()["retrying"] is False


async def test_temporary_ban_reason_says_when_it_ends(make_session) -> None:
    session = make_session(EngineScript(p.TemporaryBan(ban_code=1, expires_in=3600)))
    await session.start()
    await until(lambda: session.state is State.FAILED)
    reason = session.status()["lastDisconnectReason"]
    assert "too many people" in reason["message"]
    assert "3600 s" in reason["hint"]


async def test_pairing_code_needs_a_running_link(make_session) -> None:
    script = EngineScript(QR1)
    session = make_session(script)
    await session.start()
    pairing = await session.pair_code("4915112345678")
    assert pairing.code == "ABCD-EFGH"
    assert script.current.paired_with == "4915112345678"
    assert session.state is State.PAIRING_CODE
    assert session.status()["pairingCode"]["phone"] == "+49*********78"


async def test_pairing_code_is_refused_while_connected(make_session, store) -> None:
    make_credentials(store)
    session = make_session(EngineScript(ME))
    await session.start()
    await until(lambda: session.state is State.CONNECTED)
    with pytest.raises(SessionBusy):
        await session.pair_code("4915112345678")


async def test_pairing_code_fails_fast_when_the_attempt_fails(make_session) -> None:
    script = EngineScript()
    session = make_session(script, backoff_min=30, backoff_max=30)
    await session.start()
    asking = asyncio.create_task(session.pair_code("4915112345678"))
    await script.wait_for_engine(1)
    script.current.emit(p.DialFailed(error="connection refused"))
    with pytest.raises(SessionBusy, match="disconnected"):
        await asyncio.wait_for(asking, 5)


async def test_events_stream_every_state_change_and_rotation(make_session) -> None:
    script = EngineScript()
    session = make_session(script)
    seen: list[tuple[str, str | None]] = []

    async def watch() -> None:
        async for event in session.subscribe():
            data = event["data"]
            seen.append((event["type"], data.get("status")))
            if event["type"] == "qr" and data["qr"] == "2@second,ref":
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await session.start()
    await script.wait_for_engine(1)
    script.current.emit(QR1, QR2)
    await asyncio.wait_for(watcher, 5)
    assert seen.count(("qr", "qr_ready")) == 2
    assert ("state", "qr_ready") in seen


async def test_a_logout_soon_after_linking_says_how_soon_and_by_which_route(
    make_session, store
) -> None:
    script = EngineScript(QR1)
    session = make_session(script, via_proxy=True)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    make_credentials(store)
    script.current.emit(LINKED, ME)
    await until(lambda: session.state is State.CONNECTED)
    script.on_start = [QR1]
    script.current.emit(p.LoggedOut(code=401, on_connect=False))
    await until(lambda: session.state is State.QR_READY)
    detail = session.status()["lastDisconnectReason"]["detail"]
    assert "WhatsApp status 401" in detail
    assert "s after linking" in detail
    assert "through WA_PROXY" in detail
