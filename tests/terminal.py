"""A `waqr` command in a real pseudo-terminal (pexpect), its output played into a terminal
emulator (pyte) so that tests read the screen a person would see; and a QR read back from
that screen's block characters, decoded as a phone would (zxing-cpp)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pyte
import zxingcpp
from PIL import Image

COLUMNS, ROWS = 120, 60
# segno's compact form: each character is two module rows, (top, bottom), True for light.
HALF_BLOCKS = {"█": (True, True), " ": (False, False), "▀": (True, False), "▄": (False, True)}


class Terminal:
    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "waqr.cli", *args],
            env={**os.environ, "TERM": "xterm-256color", **env},
            cwd=str(cwd),
            dimensions=(ROWS, COLUMNS),
        )

    def pump(self, wait: float = 0.2) -> bool:
        """Read what the command wrote; False once it has closed the terminal."""
        try:
            data = self.child.read_nonblocking(1 << 16, timeout=wait)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw += data
        self._stream.feed(data)
        return True

    @property
    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, found: Callable[[Terminal], Any], timeout: float) -> Any:
        """Pump until ``found(self)`` is truthy; fail with the screen after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = self.pump()
            result = found(self)
            if result:
                return result
            if not alive:
                break
        raise AssertionError(f"not on the screen within {timeout} s:\n{self.text}")

    def exit_code(self, timeout: float = 30) -> int:
        """Pump to the end; the command's exit status (128 + n when killed by signal n)."""
        deadline = time.monotonic() + timeout
        while self.pump():
            if time.monotonic() > deadline:
                self.child.terminate(force=True)
                raise AssertionError(f"still running after {timeout} s:\n{self.text}")
        self.child.close()
        if self.child.signalstatus is not None:
            return 128 + int(self.child.signalstatus)
        return int(self.child.exitstatus)

    def interrupt(self) -> None:
        self.child.sendintr()

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 30, *, raw: bool = False
) -> tuple[int, str]:
    """Run a command to its end in a terminal: (exit code, the screen's text); with ``raw``,
    what it wrote, unwrapped (for JSON: the screen breaks lines at its width)."""
    terminal = Terminal(args, env, cwd)
    try:
        code = terminal.exit_code(timeout)
    finally:
        terminal.close()
    return code, terminal.raw.decode() if raw else terminal.text


def qr_lines(screen: pyte.Screen) -> list[str]:
    """The lines of the QR drawing on the screen (with its quiet zone), or []."""
    lines: list[str] = []
    for line in screen.display:
        body = line.strip()
        if len(body) >= 29 and body[0] == body[-1] == "█" and set(body) <= set(HALF_BLOCKS):
            lines.append(body)
        elif lines:
            break
    return lines


def drawn_qr(screen: pyte.Screen) -> str | None:
    """Decode the QR drawn on the screen, or None when there is no readable one."""
    lines = qr_lines(screen)
    if not lines or len({len(line) for line in lines}) != 1:
        return None
    modules: list[list[bool]] = []
    for line in lines:
        pairs = [HALF_BLOCKS[char] for char in line]
        modules.append([top for top, _ in pairs])
        modules.append([bottom for _, bottom in pairs])
    scale = 6
    image = Image.new("L", (len(modules[0]) * scale, len(modules) * scale))
    image.putdata(
        [
            255 if light else 0
            for row in modules
            for _ in range(scale)
            for light in row
            for _ in range(scale)
        ]
    )
    decoded = zxingcpp.read_barcodes(image)
    return str(decoded[0].text) if decoded else None
