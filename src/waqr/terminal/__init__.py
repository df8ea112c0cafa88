"""The operator's commands for a server with only a terminal: ``waqr status`` and ``waqr link``.

They talk to the bridge exactly as the UI does (``WA_QR_API_URL``, ``WA_QR_BRIDGE_TOKEN``,
the UI's :class:`~waqr.ui.client.BridgeClient`), so whatever the UI can show, a shell can.

- ``commands``: the argparse registration and the one place settings become a client;
- ``status``: the status report, in words or as the bridge's JSON;
- ``link``: the linking loop (QR or pairing code) until the session is connected;
- ``watch``: the bridge's push stream, falling back to polling, as one queue of updates;
- ``screen``: what the terminal shows: the QR, the pairing code, a spinner, a countdown.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """The exit codes of ``waqr status`` and ``waqr link`` (README, "From a terminal")."""

    OK = 0  # connected (status), linked (link)
    NOT_CONNECTED = 1  # the session is not connected / linking gave up
    CANNOT_ASK = 2  # no usable answer: bad settings, bridge unreachable, token refused
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it
