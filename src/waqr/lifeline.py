"""Tie a child process's life to its parent's.

Linux delivers a chosen signal to a process when the process that started it dies
(``PR_SET_PDEATHSIG``), even when the parent was SIGKILLed and could run no cleanup. No
maintained library wraps that one ``prctl`` call (python-prctl is unmaintained and needs
libcap headers), so it is done here with ``ctypes``.

``python -m waqr.lifeline PARENT_PID SIGNAL COMMAND...`` arms the signal and then ``exec``\\ s
the command: the setting survives ``execve``, so any program (Streamlit, the bot) gets it
without ``preexec_fn``, which is unsafe once the parent has threads.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies.

    Returns False where that is not available (not Linux); callers then rely on their
    other channel (a closed pipe, an explicit stop).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return False
    return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig))) == 0


def command(parent_pid: int, argv: Sequence[str], sig: int = signal.SIGTERM) -> list[str]:
    """The argv that runs ``argv`` under a lifeline to ``parent_pid``."""
    return [sys.executable, "-m", "waqr.lifeline", str(parent_pid), str(int(sig)), *argv]


def main(args: Sequence[str]) -> int:
    if len(args) < 3:
        sys.stderr.write("usage: python -m waqr.lifeline PARENT_PID SIGNAL COMMAND...\n")
        return 2
    parent, sig, argv = int(args[0]), int(args[1]), list(args[2:])
    die_with_parent(sig)
    if os.getppid() != parent:
        return 1  # the parent died before the lifeline was armed: do not start orphaned
    os.execvp(argv[0], argv)  # noqa: S606 - argv is waqr's own fixed command, no shell
    return 1  # not reached: execvp replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
