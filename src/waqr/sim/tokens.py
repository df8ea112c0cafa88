"""The WABinary token dictionaries (dictionary version 3, doc §5.4).

``wa_tokens.json`` is protocol data: a single-byte list of 236 strings (index 0 unused) and four
double-byte lists of 256 strings each. The client compresses strings into these indices and the
server must understand them; the server may also use them when it writes nodes.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Final

DICT_VERSION: Final = 3
SINGLE_BYTE_COUNT: Final = 236
DOUBLE_BYTE_DICTS: Final = 4
DOUBLE_BYTE_DICT_SIZE: Final = 256


class TokenTables:
    """Lookup in both directions for the single- and double-byte dictionaries."""

    def __init__(self, single: list[str], double: list[list[str]]) -> None:
        if len(single) != SINGLE_BYTE_COUNT or len(double) != DOUBLE_BYTE_DICTS:
            raise ValueError("token tables do not have the dictionary-version-3 shape")
        if any(len(d) != DOUBLE_BYTE_DICT_SIZE for d in double):
            raise ValueError("a double-byte dictionary does not have 256 entries")
        self.single: tuple[str, ...] = tuple(single)
        self.double: tuple[tuple[str, ...], ...] = tuple(tuple(d) for d in double)
        # Index 0 is the empty string and means "no token"; it must never be emitted.
        self._single_index = {s: i for i, s in enumerate(single) if i > 0 and s}
        self._double_index: dict[str, tuple[int, int]] = {}
        for dict_no, entries in enumerate(double):
            for index, s in enumerate(entries):
                self._double_index.setdefault(s, (dict_no, index))

    def single_index(self, s: str) -> int | None:
        """The single-byte token for ``s``, if there is one."""
        return self._single_index.get(s)

    def double_index(self, s: str) -> tuple[int, int] | None:
        """``(dictionary, index)`` of the double-byte token for ``s``, if there is one."""
        return self._double_index.get(s)


@cache
def tables() -> TokenTables:
    """The packaged dictionaries, loaded once."""
    raw = resources.files(__package__).joinpath("wa_tokens.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    return TokenTables(list(data["single"]), [list(d) for d in data["double"]])
