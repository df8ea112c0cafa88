"""A `waqr` command in a real pseudo-terminal (stdlib pty), its output played into a terminal
emulator (pyte) so that tests read the screen a person would see; and a QR read back from
that screen's block characters, decoded as a phone would (zxing-cpp).

The child is started with subprocess on the pty's far end, not with pty.fork(): forking a
process that runs threads (the simulator, stand-in servers) is unsafe, and Python 3.12 warns
about it, which this suite's warnings-as-errors would turn into failures."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
        self._master, far_end = pty.openpty()
        fcntl.ioctl(far_end, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "waqr.cli", *args],
            stdin=far_end,
            stdout=far_end,
            stderr=far_end,
            env={**os.environ, "TERM": "xterm-256color", **env},
            cwd=str(cwd),
            start_new_session=True,
        )
        os.close(far_end)  # the child holds it now: reading then ends when the child does
        self._open = True

    def pump(self, wait: float = 0.2) -> bool:
        """Read what the command wrote; False once it has closed the terminal."""
        if not self._open:
            return False
        ready, _, _ = select.select([self._master], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self._master, 1 << 16)
        except OSError:  # EIO: every holder of the far end has closed it
            data = b""
        if not data:
            self._open = False
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
                raise AssertionError(f"still running after {timeout} s:\n{self.text}")
        code = self.process.wait(max(1.0, deadline - time.monotonic()))
        return 128 - code if code < 0 else code

    def interrupt(self) -> None:
        """Ctrl-C: the terminal sends SIGINT to its foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        if self._master >= 0:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = -1
        self._open = False


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
