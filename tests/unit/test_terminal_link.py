"""`waqr link`'s loop fed by hand: a scripted client and a queue of updates stand in for the
bridge (the real one is in tests/integration and tests/e2e/test_operator_cli.py)."""

from __future__ import annotations

import io
import queue
from datetime import UTC, datetime
from typing import Any

import pytest

from waqr.terminal import Exit
from waqr.terminal.link import Linker
from waqr.terminal.screen import Screen
from waqr.terminal.status import describe
from waqr.ui.client import UiError

pytestmark = pytest.mark.timeout(30)

QR_READY = {"status": "qr_ready"}
CONNECTED = {"status": "connected", "account": {"jid": "15550001111@s.whatsapp.net"}}
TITLE = "Link WhatsApp: scan this QR code"


def qr(code: str, expires_in: float = 50) -> dict[str, Any]:
    return {"status": "qr_ready", "qr": code, "expires_in": expires_in}


class ScriptedClient:
    api_url = "http://127.0.0.1:1"

    def __init__(self, status: dict[str, Any], qrs: list[dict[str, Any]]) -> None:
        self._status = status
        self._qrs = qrs
        self.pair_requests: list[str] = []

    def status(self) -> dict[str, Any]:
        return self._status

    def qr(self) -> dict[str, Any]:
        return self._qrs.pop(0) if len(self._qrs) > 1 else self._qrs[0]

    def pair_code(self, phone: str) -> dict[str, Any]:
        self.pair_requests.append(phone)
        return {"code": "ABCD-EFGH", "phone": "+49*********78", "status": "pairing_code"}


class ScriptedWatcher:
    def __init__(self, *updates: tuple[str, Any]) -> None:
        self.updates: queue.Queue[tuple[str, Any]] = queue.Queue()
        for update in updates:
            self.updates.put(update)
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True


def linked(client: ScriptedClient, watcher: ScriptedWatcher, **kw: Any) -> tuple[Exit, str]:
    out = io.StringIO()
    linker = Linker(client, watcher, Screen(out, tty=False), **kw)  # type: ignore[arg-type]
    code = linker.run()
    assert watcher.stopped
    return code, out.getvalue()


def test_each_new_code_is_drawn_once_and_a_late_copy_of_an_old_one_never() -> None:
    client = ScriptedClient(QR_READY, [qr("code-A")])
    watcher = ScriptedWatcher(
        ("qr", qr("code-A", 49)),  # the same code: a newer reading of its lifetime only
        ("qr", qr("code-B")),
        ("qr", qr("code-A")),  # late: A was replaced by B
        ("state", {"status": "connecting"}),
        ("state", CONNECTED),
    )
    code, text = linked(client, watcher)
    assert code is Exit.OK
    assert text.count(TITLE) == 2
    assert "Linked on the phone; logging in to WhatsApp" in text
    assert text.rstrip().endswith("Linked: WhatsApp is connected as +15*******11.")


def test_codes_running_out_after_one_was_shown_end_with_exit_1() -> None:
    client = ScriptedClient(QR_READY, [qr("code-A")])
    watcher = ScriptedWatcher(("state", {"status": "qr_timeout"}))
    code, text = linked(client, watcher)
    assert code is Exit.NOT_CONNECTED
    assert "the QR codes ran out unscanned" in text


def test_a_session_resting_in_qr_timeout_is_woken_by_the_command() -> None:
    client = ScriptedClient({"status": "qr_timeout"}, [{"status": "qr_timeout", "qr": None}])
    watcher = ScriptedWatcher(
        ("state", {"status": "connecting"}), ("qr", qr("code-A")), ("state", CONNECTED)
    )
    code, text = linked(client, watcher)
    assert code is Exit.OK
    assert text.count(TITLE) == 1


def test_an_unused_pairing_code_ends_with_exit_1() -> None:
    client = ScriptedClient(QR_READY, [qr("code-A")])
    watcher = ScriptedWatcher(
        ("state", {"status": "pairing_code"}),
        ("qr", qr("code-B")),  # the QR on offer alongside is not shown when linking by code
        ("state", QR_READY),
    )
    code, text = linked(client, watcher, phone="+4915112345678")
    assert client.pair_requests == ["+4915112345678"]
    assert code is Exit.NOT_CONNECTED
    assert "    ABCD-EFGH" in text
    assert TITLE not in text
    assert "the pairing code expired unused" in text


def test_giving_up_after_the_timeout() -> None:
    ticks = iter(range(1000))
    client = ScriptedClient(QR_READY, [qr("code-A")])
    code, text = linked(client, ScriptedWatcher(), timeout=5, clock=lambda: float(next(ticks)))
    assert code is Exit.NOT_CONNECTED
    assert "not linked within 5 s" in text


def test_trouble_is_shown_and_a_refused_token_ends_the_command() -> None:
    client = ScriptedClient(QR_READY, [qr("code-A")])
    unreachable = UiError("bridge_unreachable", "Cannot reach the waqr bridge at X.")
    refused = UiError("bad_token", "The bridge rejected the token.")
    out = io.StringIO()
    watcher = ScriptedWatcher(("trouble", unreachable), ("fatal", refused))
    linker = Linker(client, watcher, Screen(out, tty=False))  # type: ignore[arg-type]
    with pytest.raises(UiError) as raised:
        linker.run()
    assert raised.value is refused
    assert "Waiting for the scan; Cannot reach the waqr bridge at X." in out.getvalue()


def test_a_failed_session_is_not_linked_and_says_what_to_do() -> None:
    failed = {
        "status": "failed",
        "lastDisconnectReason": {"code": "temp_banned", "message": "Banned.", "hint": "Wait."},
    }
    code, text = linked(ScriptedClient(failed, [qr("x")]), ScriptedWatcher())
    assert code is Exit.NOT_CONNECTED
    assert "  Reason:    Banned.\n  Next step: Wait.\n" in text


def test_status_words_for_a_session_that_is_retrying() -> None:
    now = datetime(2026, 11, 26, 20, 0, 0, tzinfo=UTC)
    lines = describe(
        {
            "status": "disconnected",
            "since": "2026-11-26T19:55:00.000Z",
            "lastDisconnectReason": {
                "code": "connection_failure",
                "message": "The proxy refused.",
                "hint": "Check WA_PROXY.",
                "detail": "403 Forbidden",
            },
            "retrying": True,
            "nextRetryAt": "2026-11-26T20:00:30.000Z",
            "cache": "ok",
            "bridge": {"pushConnected": True},
        },
        "http://127.0.0.1:8000",
        now,
    )
    assert lines == [
        "WhatsApp:  Disconnected, retrying [disconnected]",
        "Since:     2026-11-26 19:55:00 UTC (5 min ago)",
        "Reason:    The proxy refused.",
        "Next step: Check WA_PROXY.",
        "Code:      connection_failure (403 Forbidden)",
        "Retrying:  next attempt 2026-11-26 20:00:30 UTC (in 30 s)",
        "Bridge:    http://127.0.0.1:8000 (following the bot; cache ok)",
    ]


def test_the_doctors_verdict_is_shown_with_its_fixes() -> None:
    from waqr.terminal.link import reason_lines

    reason = {
        "message": "Could not connect to WhatsApp.",
        "hint": "Check the network.",
        "diagnosis": {
            "healthy": False,
            "layer": "proxy",
            "cause": "proxy_auth_required",
            "detail": 'the proxy answered "407 Proxy Authentication Required"',
            "fixes": ["put the proxy's user and password in WA_PROXY"],
        },
    }
    assert reason_lines(reason) == [
        "Reason:    Could not connect to WhatsApp.",
        "Next step: Check the network.",
        "Doctor:    proxy failed (proxy_auth_required)",
        '           the proxy answered "407 Proxy Authentication Required"',
        "Fix:       put the proxy's user and password in WA_PROXY",
    ]
    healthy = {**reason, "diagnosis": {"healthy": True}}
    assert reason_lines(healthy) == reason_lines(reason)[:2]
