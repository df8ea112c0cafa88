"""``waqr link``: show the QR (or, with ``--phone``, a pairing code) until the session is
connected.

One loop owns everything on the screen. It reads the watcher's queue with a short timeout
(the spinner's tick), so a rotation, a state change and the countdown reaching zero are all
just inputs. It asks the bridge for the QR itself at the start, when a code has run out
unreplaced, and every DEMAND_REFRESH seconds: a read of ``/qr`` is how the bot knows a person
is waiting to scan and keeps fresh QR batches coming (WAQR_QR_DEMAND_WINDOW).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from waqr.redact import mask_phone
from waqr.terminal import Exit
from waqr.terminal.screen import Screen, countdown_text, pair_code_frame, qr_frame
from waqr.terminal.watch import FATAL_KINDS, Watcher
from waqr.ui.client import BridgeClient, UiError
from waqr.ui.view import countdown

TICK = 0.1  # spinner frame; the countdown is redrawn on the same beat
DEMAND_REFRESH = 60.0  # well inside the bot's 180 s default demand window
REFETCH_AFTER = 2.0  # a code this long past its expiry, with no rotation seen: ask for one


class LinkEnded(Exception):
    """The command is over: its exit code and last words."""

    def __init__(self, code: Exit, lines: list[str]) -> None:
        super().__init__(code)
        self.code = code
        self.lines = lines


@dataclass
class Qr:
    code: str
    expires_in: float
    fetched_at: float  # on the monotonic clock

    def seconds_left(self, now: float) -> int:
        return countdown(self.expires_in, self.fetched_at, now)


@dataclass
class Linker:
    client: BridgeClient
    watcher: Watcher
    screen: Screen
    phone: str | None = None  # +E.164: link by pairing code instead of QR
    timeout: float | None = None
    clock: Callable[[], float] = time.monotonic

    state: str = "starting"
    status: dict[str, Any] = field(default_factory=dict)
    qr: Qr | None = None
    seen_codes: set[str] = field(default_factory=set)
    shown: bool = False  # a QR or a code was shown: the session is mid-link
    trouble: UiError | None = None
    last_fetch: float = float("-inf")

    def run(self) -> Exit:
        """Link, or say why not. The caller maps a UiError raised here to an exit code."""
        started = self.clock()
        self.screen.start()
        try:
            self._on_state(self.client.status())
            if self.phone:
                self._request_pair_code(self.phone)
            else:
                self._fetch_qr()
            self.watcher.start()
            while True:
                if self.timeout is not None and self.clock() - started > self.timeout:
                    raise LinkEnded(
                        Exit.NOT_CONNECTED,
                        [f"waqr: not linked within {self.timeout:g} s; giving up."],
                    )
                try:
                    kind, value = self.watcher.updates.get(timeout=TICK)
                except queue.Empty:
                    pass
                else:
                    self._on_update(kind, value)
                self._housekeeping()
                self._draw_status()
        except LinkEnded as ended:
            self.screen.finish(ended.lines)
            return ended.code
        except KeyboardInterrupt:
            self.screen.finish(["waqr: interrupted (the session itself is left as it is)."])
            return Exit.INTERRUPTED
        except UiError:
            self.screen.finish([])
            raise
        finally:
            self.watcher.stop()

    # --- inputs ------------------------------------------------------------------------------
    def _on_update(self, kind: str, value: Any) -> None:
        if kind == "state":
            self.trouble = None
            self._on_state(value)
        elif kind == "qr":
            self.trouble = None
            self._on_qr(value)
        elif kind == "trouble":
            self.trouble = value
        elif kind == "fatal":
            raise value

    def _on_state(self, status: dict[str, Any]) -> None:
        self.status = status
        self.state = str(status.get("status"))
        if self.state == "connected":
            raise LinkEnded(Exit.OK, linked_lines(status))
        reason = status.get("lastDisconnectReason") or {}
        if self.state == "failed":
            raise LinkEnded(
                Exit.NOT_CONNECTED,
                [
                    "waqr: the session needs your attention; it cannot be linked as it is.",
                    *reason_lines(reason, indent="  "),
                ],
            )
        if self.shown and self.phone and self.state in ("qr_ready", "qr_timeout"):
            raise LinkEnded(
                Exit.NOT_CONNECTED,
                ["waqr: the pairing code expired unused. Run `waqr link --phone ...` again."],
            )
        if self.shown and self.state == "qr_timeout":
            raise LinkEnded(
                Exit.NOT_CONNECTED,
                [
                    "waqr: the QR codes ran out unscanned (WhatsApp frowns on endless QR loops).",
                    "Run `waqr link` again when you are ready to scan.",
                ],
            )
        if self.state not in ("qr_ready", "pairing_code") and self.qr is not None:
            self.qr = None  # scanned, or the engine is starting over: the code is spent
            self.screen.frame(["Link WhatsApp"])

    def _on_qr(self, body: dict[str, Any]) -> None:
        code = body.get("qr")
        if self.phone:
            return  # linking by code: the QR that is also on offer is not ours to show
        if not code:
            return  # the state change that explains it follows
        fresh = Qr(str(code), float(body.get("expires_in") or 0), self.clock())
        if self.qr is not None and fresh.code == self.qr.code:
            self.qr = fresh  # the same code, a newer reading of its lifetime
            return
        if fresh.code in self.seen_codes:
            return  # a late copy of a code already replaced
        self.seen_codes.add(fresh.code)
        self.qr = fresh
        self.shown = True
        self.screen.frame(qr_frame(fresh.code, colours=self.screen.tty))

    # --- requests ----------------------------------------------------------------------------
    def _fetch_qr(self) -> None:
        self.last_fetch = self.clock()
        try:
            body = self.client.qr()
        except UiError as error:
            if error.kind in FATAL_KINDS:
                raise
            self.trouble = error
            return
        self._on_qr(body)

    def _request_pair_code(self, phone: str) -> None:
        # The bridge may take up to 100 s (the engine must be ready first): the request runs
        # in a daemon thread, so that the spinner turns and Ctrl-C does not wait for it.
        future: Future[dict[str, Any]] = Future()

        def request() -> None:
            try:
                future.set_result(self.client.pair_code(phone))
            except BaseException as exc:  # handed to the waiting thread, which raises it
                future.set_exception(exc)

        threading.Thread(target=request, name="waqr-pair-code", daemon=True).start()
        while not future.done():
            self.screen.status("Asking WhatsApp for a pairing code")
            time.sleep(TICK)
        try:
            reply = future.result()
        except UiError as error:
            if error.kind != "rejected":
                raise
            raise LinkEnded(
                Exit.NOT_CONNECTED, [f"waqr: no pairing code: {error.message}"]
            ) from None
        self.shown = True
        self.screen.frame(pair_code_frame(str(reply.get("code")), reply.get("phone")))

    def _housekeeping(self) -> None:
        if self.phone or self.state not in ("qr_ready", "qr_timeout"):
            return
        now = self.clock()
        since_fetch = now - self.last_fetch
        spent = self.qr is None or self.qr.seconds_left(now) == 0
        if since_fetch >= DEMAND_REFRESH or (spent and since_fetch >= REFETCH_AFTER):
            self._fetch_qr()

    # --- output ------------------------------------------------------------------------------
    def _draw_status(self) -> None:
        message, detail = self._status_words()
        if self.trouble is not None:
            message += f"; {self.trouble.message}"
        self.screen.status(message, detail)

    def _status_words(self) -> tuple[str, str]:
        reason = self.status.get("lastDisconnectReason") or {}
        if self.phone and self.state == "pairing_code":
            return "Waiting for the code to be entered on the phone", ""
        if self.qr is not None:
            return "Waiting for the scan", countdown_text(self.qr.seconds_left(self.clock()))
        if self.state == "connecting" and self.shown:
            return "Linked on the phone; logging in to WhatsApp", ""
        if self.state == "disconnected":
            return "Not connected, retrying", str(reason.get("message") or "")
        if self.state == "logged_out":
            return "Logged out; preparing a fresh link", ""
        if self.state in ("qr_ready", "qr_timeout"):
            return "Fetching the QR code", ""
        return "Connecting to WhatsApp", ""


def account_name(status: dict[str, Any]) -> str:
    """The linked account as it may be shown: ``+15*******11 (push name)``."""
    account = status.get("account") or {}
    number = str(account.get("jid") or "").split("@", 1)[0].split(":", 1)[0]
    who = mask_phone(number) if number else "this device"
    if account.get("pushName"):
        who += f" ({account['pushName']})"
    return who


def linked_lines(status: dict[str, Any]) -> list[str]:
    return [f"Linked: WhatsApp is connected as {account_name(status)}."]


def reason_lines(reason: dict[str, Any], indent: str = "") -> list[str]:
    """Why, and what to do: the bot's message and hint, and a fix when one is given."""
    lines = []
    if reason.get("message"):
        lines.append(f"{indent}Reason:    {reason['message']}")
    if reason.get("hint"):
        lines.append(f"{indent}Next step: {reason['hint']}")
    if reason.get("fix") and reason.get("fix") != reason.get("hint"):
        lines.append(f"{indent}Fix:       {reason['fix']}")
    diagnosis = reason.get("diagnosis")
    if isinstance(diagnosis, dict) and not diagnosis.get("healthy"):
        # The connection doctor's verdict: the first layer that failed, why, and the fixes.
        lines.append(
            f"{indent}Doctor:    {diagnosis.get('layer')} failed ({diagnosis.get('cause')})"
        )
        if diagnosis.get("detail"):
            lines.append(f"{indent}           {diagnosis['detail']}")
        for fix in diagnosis.get("fixes") or []:
            lines.append(f"{indent}Fix:       {fix}")
    return lines
