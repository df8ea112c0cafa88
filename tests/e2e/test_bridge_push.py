"""The bridge answers from what the bot pushed, and what it says is never stale: every QR it
serves while polled through a rotation is the code the bot holds at that moment."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.harness import SimThread, bot_on
from tests.integration.test_bridge import BEARER, running_bridge
from tests.procs import wait_until


def test_qr_and_status_come_from_the_push_path_and_are_never_stale(
    sim: SimThread, tmp_path: Path
) -> None:
    sim.faults(refs=2)  # a code lives 20 s: one rotation inside the test
    bot = bot_on(sim, tmp_path / "bot").start()
    try:
        with running_bridge(tmp_path / "api", bot.url) as api:

            def held() -> str | None:
                code: str | None = bot.get("/qr", params={"peek": "true"}).json()["qr"]
                return code

            def served() -> dict[str, object]:
                body: dict[str, object] = api.get("/admin/wa/qr", headers=BEARER).json()
                return body

            wait_until(lambda: served()["source"] == "push" and served()["qr"], 30)
            seen, sources, stale = set(), set(), []
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline and len(seen) < 2:
                before = held()
                answer = served()
                after = held()
                seen.add(answer["qr"])
                sources.add(answer["source"])
                if answer["qr"] not in (before, after):
                    stale.append(answer)
                time.sleep(0.1)

            status = api.get("/admin/wa/status", headers=BEARER).json()
    finally:
        bot.stop()
    assert len(seen) == 2, "the code did not rotate while polled"
    assert stale == []
    assert sources == {"push"}
    assert status["source"] == "push" and status["status"] == "qr_ready"
    assert 0 < status["qr"]["expiresIn"] <= 20
