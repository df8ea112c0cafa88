"""Benchmark: what open UI tabs cost. Real simulator, bot, bridge and Streamlit UI on loopback,
and 1 then 5 tabs open in Chromium while a QR is on offer: the bridge's request rate (from its
own /metrics) and the Streamlit process's CPU share, each over the same window.

    uv run python -m bench.ui_tabs --seconds 30

(`uv run python -m bench` measures this too, in its one run.) Prints a table and writes
bench/results/ui_tabs.json. Before the push (issue 13) one tab made
about 2 bridge requests a second; now an idle tab makes none.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import report  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from tests.integration.test_bridge import TOKEN  # noqa: E402
from tests.procs import cpu_seconds  # noqa: E402
from tests.ui.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    bridge_requests,
    running_backend,
    running_ui,
)


def streamlit_pid(port: int) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(argv) and str(port).encode() in argv:
                return int(entry.name)
    raise RuntimeError("the Streamlit process was not found")


def measure(seconds: float) -> dict[str, float]:
    """Bridge requests per second and Streamlit CPU share with 1, then 5 tabs open, each over
    ``seconds``."""
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="waqr-bench-ui-") as tmp:
        work = Path(tmp)
        with (
            running_backend(work, work / "sim", refs=2) as backend,
            running_ui(work / "ui", backend.api.url, TOKEN) as ui_url,
            sync_playwright() as playwright,
        ):
            pid = streamlit_pid(int(ui_url.rsplit(":", 1)[1]))
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for tabs in (1, 5):
                context = browser.new_context()
                pages = [context.new_page() for _ in range(tabs)]
                for page in pages:
                    page.goto(ui_url)
                    page.locator('[data-testid="waqr-badge"]').first.wait_for(timeout=60_000)
                time.sleep(3)  # past the first draws
                requests, cpu = bridge_requests(backend.api), cpu_seconds(pid)
                time.sleep(seconds)
                requests = bridge_requests(backend.api) - requests  # /metrics is not counted
                cpu = cpu_seconds(pid) - cpu
                result[f"{tabs} tab(s): bridge req/s"] = round(requests / seconds, 3)
                result[f"{tabs} tab(s): Streamlit CPU %"] = round(100 * cpu / seconds, 1)
                context.close()
            browser.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window per count")
    args = parser.parse_args()
    report("ui_tabs", {"seconds": args.seconds, **measure(args.seconds)}, width=32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
