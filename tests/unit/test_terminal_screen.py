"""What `waqr link` draws, read back through a terminal emulator: the QR decodes to its
payload, the countdown says the truth, and nothing secret stays on the screen at the end."""

from __future__ import annotations

import io
import os

import pyte

from tests.terminal import drawn_qr, qr_lines
from waqr.terminal.screen import (
    Screen,
    countdown_text,
    pair_code_frame,
    qr_frame,
    too_small,
)

PAYLOAD = "2@" + "Ab3dEf6hIj" * 10 + ",bm9pc2Uta2V5LWJhc2U2NA==,aWRlbnRpdHkta2V5,YWR2LXNlY3JldA=="
BIG = os.terminal_size((120, 60))


def played(output: str, size: os.terminal_size = BIG) -> pyte.Screen:
    screen = pyte.Screen(size.columns, size.lines)
    # A terminal's line discipline turns "\n" into "\r\n" on its way to the screen.
    pyte.Stream(screen).feed(output.replace("\n", "\r\n"))
    return screen


def test_the_drawn_qr_decodes_to_its_payload() -> None:
    out = io.StringIO()
    screen = Screen(out, tty=True, size=lambda: BIG)
    screen.frame(qr_frame(PAYLOAD, colours=True))
    screen.status("Waiting for the scan", countdown_text(42))
    shown = played(out.getvalue())
    assert drawn_qr(shown) == PAYLOAD
    assert "Waiting for the scan (expires in 42 s" in "\n".join(shown.display)


def test_a_new_frame_replaces_the_old_qr() -> None:
    out = io.StringIO()
    screen = Screen(out, tty=True, size=lambda: BIG)
    screen.frame(qr_frame(PAYLOAD, colours=True))
    screen.frame(qr_frame(PAYLOAD.replace("Ab3", "Zz9"), colours=True))
    assert drawn_qr(played(out.getvalue())) == PAYLOAD.replace("Ab3", "Zz9")


def test_finish_wipes_the_qr_and_the_scrollback() -> None:
    out = io.StringIO()
    screen = Screen(out, tty=True, size=lambda: BIG)
    screen.start()
    screen.frame(qr_frame(PAYLOAD, colours=True))
    screen.finish(["Linked: WhatsApp is connected as +1555*****11."])
    shown = played(out.getvalue())
    assert qr_lines(shown) == []
    assert "Linked: WhatsApp is connected" in "\n".join(shown.display)
    assert out.getvalue().endswith("\x1b[?25h" + "Linked: WhatsApp is connected as +1555*****11.\n")
    # Erased after the QR was drawn: the scrollback too, not only the visible screen.
    assert "\x1b[3J" in out.getvalue().rsplit("Link a device.", 1)[-1]


def test_without_a_terminal_each_message_is_said_once_and_plainly() -> None:
    out = io.StringIO()
    screen = Screen(out, tty=False, size=lambda: BIG)
    screen.frame(qr_frame(PAYLOAD, colours=False))
    for left in (42, 41, 40):
        screen.status("Waiting for the scan", countdown_text(left))
    screen.status("Linked on the phone; logging in to WhatsApp")
    text = out.getvalue()
    assert "\x1b" not in text
    assert text.count("Waiting for the scan") == 1
    assert text.count("logging in to WhatsApp") == 1
    assert drawn_qr(played(text)) == PAYLOAD


def test_countdown_words() -> None:
    assert countdown_text(20) == "expires in 20 s; a fresh code replaces it by itself"
    assert countdown_text(0).startswith("this code has expired")
    assert countdown_text(-3).startswith("this code has expired")


def test_a_terminal_too_small_for_the_qr_is_told_how_big_it_must_be() -> None:
    frame = qr_frame(PAYLOAD, colours=True)
    assert too_small(frame, BIG) is None
    warning = too_small(frame, os.terminal_size((80, 24)))
    assert warning is not None
    width = max(len(line) for line in qr_frame(PAYLOAD, colours=False))
    assert f"make it at least {width}x{len(frame) + 2}" in warning


def test_the_pairing_code_frame_says_where_to_type_it() -> None:
    frame = pair_code_frame("ABCD-EFGH", "+1555*****11")
    text = "\n".join(frame)
    assert "WhatsApp -> Linked devices -> Link with phone number" in text
    assert "    ABCD-EFGH" in frame
    assert "(+1555*****11)" in frame[0]
