"""What ``waqr link`` shows. On a terminal, a frame (the QR, or the pairing code) is drawn on
a cleared screen and one status line under it is rewritten in place: spinner, countdown. On
anything else (a pipe, ``ssh`` without ``-t``) there are no escape codes: the frame is printed
once and each new status message once, without the ticking parts.

The frame builders are pure functions of their input, so the words and the layout are tested
without a terminal.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import TextIO

from waqr.qr_render import render_text

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
MARGIN = "  "

# ANSI control sequences (ECMA-48): home + erase display; erase scrollback (xterm); erase line.
CLEAR = "\x1b[H\x1b[2J"
CLEAR_SCROLLBACK = "\x1b[3J"
ERASE_LINE = "\r\x1b[2K"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
# segno's compact form draws light modules as blocks and dark ones as blanks; saying the
# colours (bright white on black) makes it right on a light-background terminal too.
QR_COLOURS = "\x1b[97;40m"
RESET = "\x1b[0m"

SCAN_HOW = "On your phone: WhatsApp -> Settings -> Linked devices -> Link a device."
PAIR_HOW = "On your phone: WhatsApp -> Linked devices -> Link with phone number, then type:"


def countdown_text(seconds_left: int) -> str:
    if seconds_left <= 0:
        return "this code has expired; the next one is on its way"
    return f"expires in {seconds_left} s; a fresh code replaces it by itself"


def qr_frame(payload: str, *, colours: bool) -> list[str]:
    """The QR (with its quiet zone) under a title and above the instruction."""
    drawing = render_text(payload)
    if colours:
        drawing = [f"{QR_COLOURS}{line}{RESET}" for line in drawing]
    return [
        "Link WhatsApp: scan this QR code",
        "",
        *(MARGIN + line for line in drawing),
        "",
        SCAN_HOW,
    ]


def pair_code_frame(code: str, phone_masked: str | None) -> list[str]:
    title = "Link WhatsApp with a phone number"
    if phone_masked:
        title += f" ({phone_masked})"
    return [title, "", PAIR_HOW, "", MARGIN * 2 + code, ""]


def too_small(frame: list[str], size: os.terminal_size) -> str | None:
    """A warning when the frame (plus its status line) cannot be seen whole, else None."""
    rows = len(frame) + 2
    columns = max((len(_visible(line)) for line in frame), default=0)
    if rows <= size.lines and columns <= size.columns:
        return None
    return (
        f"(the terminal is {size.columns}x{size.lines}; make it at least {columns}x{rows} "
        "to see the whole code)"
    )


def _visible(line: str) -> str:
    return line.replace(QR_COLOURS, "").replace(RESET, "")


class Screen:
    """The terminal ``waqr link`` writes to; see the module docstring for the two modes."""

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool,
        size: Callable[[], os.terminal_size] = shutil.get_terminal_size,
    ) -> None:
        self.out = out
        self.tty = tty
        self._size = size
        self._spin = 0
        self._message = ""
        self._drawn = False  # a frame (QR or code) is on the screen

    def start(self) -> None:
        if self.tty:
            self._write(HIDE_CURSOR)

    def frame(self, lines: list[str]) -> None:
        """Replace what is on the screen with ``lines``; the status line follows below."""
        if self.tty:
            warning = too_small(lines, self._size())
            self._write(CLEAR + CLEAR_SCROLLBACK + "\n".join(lines) + "\n")
            if warning:
                self._write(warning + "\n")
        else:
            self._write("\n".join(lines) + "\n")
        self._drawn = True
        self._message = ""

    def status(self, message: str, detail: str = "") -> None:
        """Show the status line; on a terminal it spins, elsewhere a message is said once."""
        if self.tty:
            self._spin = (self._spin + 1) % len(SPINNER)
            text = f"{SPINNER[self._spin]} {message}" + (f" ({detail})" if detail else "")
            width = self._size().columns
            self._write(ERASE_LINE + text[: max(1, width - 1)])
        elif message != self._message:
            self._write(message + (f" ({detail})" if detail else "") + "\n")
        self._message = message

    def finish(self, lines: list[str]) -> None:
        """The last words. A QR or code on the screen is wiped first (scrollback too): it is
        a secret, and of no use once the command ends."""
        if self.tty:
            self._write(CLEAR + CLEAR_SCROLLBACK if self._drawn else ERASE_LINE)
            self._write(SHOW_CURSOR)
        self._write("".join(line + "\n" for line in lines))
        self._drawn = False

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()
