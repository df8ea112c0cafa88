"""The session owns the clock: every waiting state ends at its deadline whatever the engine
does or fails to say, and nothing (an exception, a hung call, a race) wedges the actor."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.scripted_engine import EngineScript
from tests.unit.session_fixtures import LINKED, ME, QR1, QR2, linked, make_credentials, until
from waqr.bot.states import State
from waqr.engine import protocol as p
from waqr.errors import EngineUnresponsive, SessionBusy

pytestmark = pytest.mark.timeout(20)


def reason_code(session) -> str | None:
    reason = session.status()["lastDisconnectReason"]
    return reason["code"] if reason else None


# --- QR batches: whatsmeow closes the socket itself and says nothing --------------------------
async def test_a_silent_end_of_the_qr_batch_with_someone_waiting_brings_a_new_batch(
    make_session, clock
) -> None:
    script = EngineScript(QR1, QR2)
    session = make_session(script, qr_grace=3)
    await session.start()
    await until(lambda: session.qr_payload()["qr"] == "2@second,ref")
    session.note_qr_demand()
    clock.advance(20 + 3, session)  # the last code expired, no Disconnected, no new code
    second = await script.wait_for_engine(2)
    assert script.engines[0].stopped
    await until(lambda: session.state is State.QR_READY and session.qr is not None)
    assert reason_code(session) == "qr_batch_exhausted"
    assert second.started


async def test_a_silent_end_of_the_qr_batch_with_nobody_waiting_rests_in_qr_timeout(
    make_session, clock
) -> None:
    script = EngineScript(QR1)
    session = make_session(script)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    clock.advance(60 + 5, session)
    await until(lambda: session.state is State.QR_TIMEOUT)
    assert reason_code(session) == "qr_timeout"
    assert session.status()["retrying"] is False
    await asyncio.sleep(0.05)
    assert len(script.engines) == 1
    session.note_qr_demand()  # someone asks again: a fresh batch
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.QR_READY)


async def test_a_rotating_qr_moves_the_batch_deadline(make_session, clock) -> None:
    script = EngineScript(QR1)
    session = make_session(script)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    clock.advance(60, session)
    script.current.emit(QR2)  # the next code arrives on time
    await until(lambda: session.qr_payload()["qr"] == "2@second,ref")
    clock.advance(10, session)
    await asyncio.sleep(0.05)
    assert session.state is State.QR_READY
    assert len(script.engines) == 1


async def test_unscanned_qr_batches_stop_after_the_cycle_cap(make_session, clock) -> None:
    script = EngineScript(QR1)
    session = make_session(script, qr_max_cycles=2)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    session.note_qr_demand()
    clock.advance(65, session)
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.QR_READY and session.qr is not None)
    session.note_qr_demand()
    clock.advance(65, session)
    await until(lambda: session.state is State.QR_TIMEOUT)
    await asyncio.sleep(0.05)
    assert len(script.engines) == 2


async def test_an_event_listener_alone_does_not_keep_qr_batches_coming(make_session, clock) -> None:
    script = EngineScript(QR1)
    session = make_session(script)
    listener = session.subscribe()
    await anext(listener)  # the bridge listens all the time; that is not a person waiting
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    clock.advance(65, session)
    await until(lambda: session.state is State.QR_TIMEOUT)
    assert len(script.engines) == 1
    await listener.aclose()


async def test_a_pairing_code_ends_with_its_batch(make_session, clock) -> None:
    script = EngineScript(QR1)
    session = make_session(script, qr_max_cycles=1)
    await session.start()
    await session.pair_code("4915112345678")
    assert session.state is State.PAIRING_CODE
    clock.advance(65, session)
    await until(lambda: session.state is State.QR_TIMEOUT)
    assert session.status()["pairingCode"] is None


# --- logging in: the close that races the 515 ------------------------------------------------
async def test_a_login_that_stalls_after_linking_is_retried_with_the_new_credentials(
    make_session, store, clock
) -> None:
    script = EngineScript(QR1)
    session = make_session(script, login_timeout=30)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    make_credentials(store)
    script.on_start = [ME]
    script.current.emit(LINKED)  # ...and then whatsmeow never redials
    await until(lambda: session.state is State.CONNECTING)
    clock.advance(31, session)
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.CONNECTED)
    assert store.has_credentials()
    assert reason_code(session) == "login_stalled"


async def test_an_engine_that_says_nothing_at_all_is_replaced(make_session, clock) -> None:
    script = EngineScript()
    session = make_session(script, dial_timeout=40)
    await session.start()
    await script.wait_for_engine(1)
    clock.advance(41, session)
    await script.wait_for_engine(2)
    assert script.engines[0].stopped
    assert reason_code(session) == "connect_timeout"


# --- refusals WhatsApp retries: spaced by the session's own backoff --------------------------
async def test_a_503_refusal_keeps_its_reason_and_waits_for_the_sessions_backoff(
    make_session, store
) -> None:
    make_credentials(store)
    script = EngineScript(p.ServerUnavailable(code=503))
    session = make_session(script, backoff_min=30, backoff_max=30)
    await session.start()
    status = await until(lambda: (s := session.status())["status"] == "disconnected" and s)
    assert status["lastDisconnectReason"]["code"] == "server_unavailable"
    assert "503" in status["lastDisconnectReason"]["detail"]
    assert script.engines[0].stopped  # whatsmeow's own retry burst is stopped
    await asyncio.sleep(0.05)
    assert len(script.engines) == 1
    assert reason_code(session) == "server_unavailable"
    assert store.has_credentials()


# --- the actor survives anything -------------------------------------------------------------
async def test_an_engine_that_cannot_start_is_retried(make_session) -> None:
    script = EngineScript(QR1)
    script.start_error = OSError(24, "Too many open files")
    session = make_session(script)
    await session.start()
    await until(lambda: reason_code(session) == "engine_start_failed")
    await script.wait_for_engine(2)
    script.start_error = None
    await until(lambda: session.state is State.QR_READY)
    assert session.health() is None


async def test_an_exception_inside_a_step_becomes_a_reason_and_a_retry(
    make_session, store, monkeypatch
) -> None:
    session, script = await linked(make_session, store)

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "wipe_credentials", disk_full)
    script.on_start = [QR1]
    await session.logout()
    await until(lambda: reason_code(session) == "internal_error")
    assert "No space left" in session.status()["lastDisconnectReason"]["detail"]
    monkeypatch.undo()
    await until(lambda: session.state is State.QR_READY)  # retried, and the wipe went through
    assert not store.db_path.exists()
    assert session.health() is None


async def test_a_hung_engine_fails_its_ping_and_is_replaced(make_session, store, clock) -> None:
    session, script = await linked(make_session, store, ping_interval=30, command_bound=35)
    script.hang_commands = True
    clock.advance(31, session)
    await until(lambda: script.engines[0].pings == 1)
    clock.advance(36, session)
    await until(lambda: reason_code(session) == "engine_unresponsive")
    script.hang_commands = False
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.CONNECTED)
    assert store.has_credentials()


async def test_a_hung_pairing_call_answers_the_caller_and_recycles_the_engine(
    make_session, clock
) -> None:
    script = EngineScript(QR1)
    script.hang_commands = True
    session = make_session(script, command_bound=35)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    asking = asyncio.create_task(session.pair_code("4915112345678"))
    await asyncio.sleep(0.05)
    clock.advance(36, session)
    with pytest.raises(EngineUnresponsive):
        await asyncio.wait_for(asking, 5)
    await until(lambda: reason_code(session) == "engine_unresponsive")
    await script.wait_for_engine(2)


async def test_health_names_a_dead_actor(make_session) -> None:
    session = make_session(EngineScript(QR1))
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    assert session.health() is None
    session._actor.cancel()
    await until(lambda: session.health() is not None)
    assert "actor" in session.health()


async def test_health_names_an_actor_stuck_past_its_deadline(make_session, store, clock) -> None:
    session, script = await linked(make_session, store, health_margin=60)
    release = threading.Event()
    store.wipe_credentials = lambda: release.wait(10)  # a disk that stops answering
    script.on_start = [QR1]
    logout = asyncio.create_task(session.logout())
    await asyncio.sleep(0.1)
    clock.advance(500)  # every deadline long past, and the actor cannot look
    assert "past a deadline" in (session.health() or "")
    release.set()
    await logout
    await until(lambda: session.health() is None)


# --- races between requests: one queue orders them -------------------------------------------
async def test_a_reconnect_during_pairing_waits_for_the_code_and_says_so(make_session) -> None:
    script = EngineScript(QR1)
    session = make_session(script)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    pairing = asyncio.create_task(session.pair_code("4915112345678"))
    reconnect = asyncio.create_task(session.reconnect())
    code = await pairing
    result = await reconnect
    assert code.code == "ABCD-EFGH"
    assert script.engines[0].paired_with == "4915112345678"
    assert result.queued_behind == "pair_code"
    await script.wait_for_engine(2)
    assert script.engines[1].paired_with is None  # never pairs an engine nobody asked about


async def test_a_reconnect_during_logout_never_cuts_the_unlink_short(make_session, store) -> None:
    session, script = await linked(make_session, store)
    first = script.current
    first.unlink_gate.clear()  # WhatsApp is slow to confirm the unlink
    script.on_start = [QR1]
    logout = asyncio.create_task(session.logout())
    await asyncio.sleep(0.05)
    reconnect = asyncio.create_task(session.reconnect())
    await asyncio.sleep(0.05)
    assert not first.stopped  # the engine stays until the unlink is done
    first.unlink_gate.set()
    assert (await logout).unlinked is True
    assert (await reconnect).queued_behind == "logout"
    await until(lambda: session.state is State.QR_READY)
    assert not store.db_path.exists()


async def test_a_newer_pairing_request_supersedes_a_waiting_one(make_session) -> None:
    script = EngineScript()
    session = make_session(script)
    await session.start()
    await script.wait_for_engine(1)
    first = asyncio.create_task(session.pair_code("4915112345678"))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(session.pair_code("4915112345679"))
    with pytest.raises(SessionBusy, match="superseded"):
        await first
    script.current.emit(QR1)
    assert (await second).phone_masked.endswith("79")


async def test_close_stops_the_engine_from_any_state(make_session) -> None:
    script = EngineScript(QR1)
    session = make_session(script)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    await asyncio.wait_for(session.close(), 5)
    assert script.engines[0].stopped
    assert len(script.engines) == 1


async def test_a_socket_seen_closing_right_after_linking_shortens_the_wait_for_the_redial(
    make_session, store, clock
) -> None:
    script = EngineScript(QR1)
    session = make_session(script, login_timeout=30, redial_grace=5)
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    make_credentials(store)
    script.on_start = [ME]
    script.current.emit(LINKED, p.Disconnected())  # the close beat the 515
    await until(lambda: session.status()["deadlineAt"] is not None)
    await asyncio.sleep(0.05)
    clock.advance(6, session)  # well inside the login deadline, past the redial grace
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.CONNECTED)
    assert reason_code(session) == "login_stalled"


async def test_a_logout_during_a_reconnect_waits_for_the_engine_to_unlink_with(
    make_session, store
) -> None:
    session, script = await linked(make_session, store)
    script.on_start = []  # the next engine takes its time to log in
    await session.reconnect()
    second = await script.wait_for_engine(2)
    logout = asyncio.create_task(session.logout())
    await asyncio.sleep(0.05)
    assert not logout.done()
    script.on_start = [QR1]
    second.emit(ME)
    assert (await logout).unlinked is True
    assert second.logged_out  # no dead entry left in the phone's Linked devices
    await until(lambda: session.state is State.QR_READY)
    assert not store.db_path.exists()


async def test_a_logout_gives_up_waiting_for_a_connection_and_wipes_locally(
    make_session, store, clock
) -> None:
    make_credentials(store)
    script = EngineScript()
    session = make_session(script, unlink_wait=15)
    await session.start()
    await script.wait_for_engine(1)
    logout = asyncio.create_task(session.logout())
    await asyncio.sleep(0.05)
    clock.advance(16, session)
    assert (await asyncio.wait_for(logout, 5)).unlinked is False
    await until(lambda: not store.db_path.exists())


async def test_an_engine_retired_while_it_was_starting_is_stopped_once_it_runs(
    make_session, store
) -> None:
    make_credentials(store)
    script = EngineScript(ME)
    script.start_gate.clear()  # the first engine takes its time to start
    session = make_session(script)
    await session.start()
    first = await script.wait_for_engine(1)
    reconnect = asyncio.create_task(session.reconnect())
    await asyncio.sleep(0.05)  # retired before it had anything to stop
    script.start_gate.set()
    await reconnect
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.CONNECTED)
    assert first.stopped
    assert first.running == [script.engines[1]]  # never two engines on one store


async def test_a_link_that_stops_answering_its_keepalive_leaves_connected(
    make_session, store, clock
) -> None:
    import time

    session, script = await linked(make_session, store, keepalive_grace=45)
    answered = time.time() - 30
    script.current.emit(p.KeepAliveTimeout(error_count=1, last_success=answered))
    status = await until(lambda: (s := session.status())["keepaliveFailing"] and s)
    assert status["status"] == "connected"  # not yet: one missed ping passes
    assert status["lastFrameAt"] is not None
    script.current.emit(p.KeepAliveTimeout(error_count=2, last_success=answered))
    await asyncio.sleep(0.05)
    clock.advance(46, session)
    status = await until(lambda: (s := session.status())["status"] != "connected" and s)
    reason = status["lastDisconnectReason"]
    assert reason["code"] == "link_unresponsive"
    assert "2 keepalive ping(s) unanswered since" in reason["detail"]
    assert "last answered at" in reason["detail"]
    await script.wait_for_engine(2)
    await until(lambda: session.state is State.CONNECTED)
    assert session.status()["keepaliveFailing"] is False
    assert store.has_credentials()


async def test_one_missed_ping_then_an_answer_stays_connected(make_session, store, clock) -> None:
    session, script = await linked(make_session, store, keepalive_grace=45)
    script.current.emit(p.KeepAliveTimeout(error_count=1), p.KeepAliveRestored())
    await until(
        lambda: session.status()["deadlineAt"] is None and session.keepalive_failing is False
    )
    clock.advance(46, session)
    await asyncio.sleep(0.05)
    assert session.state is State.CONNECTED
    assert len(script.engines) == 1


async def test_a_reconnect_after_a_failed_restart_is_not_swallowed(make_session, store) -> None:
    session, script = await linked(make_session, store, backoff_min=30, backoff_max=30)
    script.on_start = [p.DialFailed(error="connection refused")]
    assert (await session.reconnect()).started is True
    await until(lambda: session.state is State.DISCONNECTED)
    script.on_start = [ME]
    assert (await session.reconnect()).started is True  # not folded into the failed one
    await until(lambda: session.state is State.CONNECTED)


async def test_a_closed_session_is_not_reported_unhealthy(make_session) -> None:
    session = make_session(EngineScript(QR1))
    await session.start()
    await until(lambda: session.state is State.QR_READY)
    await session.close()
    assert session.health() is None


async def test_subscribers_are_told_when_a_link_turns_unstable_and_stable_again(
    make_session, store
) -> None:
    session, script = await linked(make_session, store, keepalive_grace=45)
    listener = session.subscribe()
    await anext(listener)  # the current state
    script.current.emit(p.KeepAliveTimeout(error_count=1))
    event = await asyncio.wait_for(anext(listener), 5)
    assert event["type"] == "state"
    assert event["data"]["status"] == "connected"
    assert event["data"]["keepaliveFailing"] is True
    script.current.emit(p.KeepAliveRestored())
    event = await asyncio.wait_for(anext(listener), 5)
    assert event["data"]["keepaliveFailing"] is False
    await listener.aclose()
