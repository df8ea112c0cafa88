"""The one way a benchmark reports: a table on stdout and JSON under bench/results/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def report(name: str, result: dict[str, Any], *, width: int = 24) -> Path:
    """Write ``result`` to ``bench/results/<name>.json`` and print it as a table (targets are
    in the JSON only)."""
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'metric':<{width}}{'value':>20}")
    for key, value in result.items():
        if key != "targets":
            print(f"{key:<{width}}{value!s:>20}")
    print(f"written: {out}")
    return out
