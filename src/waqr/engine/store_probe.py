"""Read-only questions about whatsmeow's sqlite credential store.

Lives in the engine package because the engine child asks them before connecting (a linking
child runs whatsmeow at DEBUG, see ``child.py``); the bot's ``store.py`` re-exports it, so
the engine never imports from the bot.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path


def store_has_device(db_path: Path) -> bool:
    """Whether whatsmeow's sqlite store at ``db_path`` holds a paired device."""
    if not db_path.is_file():
        return False
    try:
        # mode=ro: a probe must never create the file or take a write lock on it.
        with contextlib.closing(
            sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2)
        ) as db:
            row = db.execute("SELECT count(*) FROM whatsmeow_device").fetchone()
    except sqlite3.Error:
        return False
    return bool(row and row[0])
