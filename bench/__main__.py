"""Every benchmark figure in one run: ``uv run python -m bench`` (``--smoke``: seconds).

The side-by-side figures (bench/side_by_side.py: the bridge beside the bot it fronts and the
original design, freshness, relink, scan, reconnect, first QR, footprint), then the cost of
one and five open UI tabs (bench/ui_tabs.py). Prints one table and writes
bench/results/<timestamp>.json. It never fails on a number.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import side_by_side, ui_tabs  # noqa: E402

UI_SECONDS = 30.0
UI_SECONDS_SMOKE = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = side_by_side.arguments(__doc__.splitlines()[0])
    parser.add_argument("--ui-seconds", type=float, help="window per tab count (default 30)")
    args = parser.parse_args(argv)
    if side_by_side.wrk_missing():
        return 2
    result = side_by_side.measured(side_by_side.settings_from(args))
    seconds = args.ui_seconds or (UI_SECONDS_SMOKE if args.smoke else UI_SECONDS)
    result["ui_tabs"] = {"seconds": seconds, **ui_tabs.measure(seconds)}
    print(side_by_side.table(result))
    for key, value in result["ui_tabs"].items():
        if key != "seconds":
            print(f"{'UI tabs: ' + key:<44}{'waqr':<20}{value:>30}")
    print(f"written: {side_by_side.write(result, 'smoke' if args.smoke else '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
