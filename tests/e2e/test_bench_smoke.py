"""The benchmark (`python -m bench`) still runs end to end (tiny counts), so it cannot rot. It
never fails on a number; this checks that every figure was measured and written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_runs_and_writes_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    written = Path(done.stdout.strip().splitlines()[-1].removeprefix("written: "))
    result = json.loads(written.read_text())
    written.unlink()
    for block in ("qr_rates", "status_rates_qr", "status_rates_linked"):
        assert set(result[block]) == {
            "bot", "waqr", "waqr+redis", "waqr 2 workers", "original design"
        }  # fmt: skip
        assert all(figures["rps"]["median"] > 0 for figures in result[block].values())
    assert set(result["stale"]) == {"waqr", "original design"}
    assert result["stale"]["waqr"]["answers"] > 0
    for name in ("waqr", "original design"):
        assert {"codes", "never_seen", "p50_ms", "max_ms"} <= set(
            result["stale"][name]["new_qr_visible"]
        )
    assert {"codes", "never_seen", "p50_ms", "max_ms"} <= set(result["new_qr_over_sse"])
    for key in ("first_qr_after_start_s", "scan_to_connected_s", "drop_to_connected_s"):
        assert result[key] > 0
    assert set(result["footprint"]) == {"bot", "waqr bridge", "redis"}
    for tabs in (1, 5):
        assert result["ui_tabs"][f"{tabs} tab(s): bridge req/s"] >= 0
        assert result["ui_tabs"][f"{tabs} tab(s): Streamlit CPU %"] > 0
    assert "GET qr req/s" in done.stdout  # the table was printed
    assert "UI tabs: 5 tab(s)" in done.stdout
