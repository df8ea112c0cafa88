"""GET /diagnose on the bot and GET /admin/wa/diagnose on the bridge, with real processes: the
bot probes from where it runs, with its own settings; the bridge asks the bot."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.integration.test_bridge import BEARER, running_bridge
from tests.procs import free_port, running_bot

pytestmark = pytest.mark.timeout(120)


def test_bot_and_bridge_report_the_refused_proxy(tmp_path: Path) -> None:
    bot_token = secrets.token_urlsafe(32)
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    with (
        running_bot(tmp_path / "bot", WA_PROXY=dead_proxy, WAQR_BOT_TOKEN=bot_token) as bot,
        running_bridge(tmp_path / "api", bot.url, WAQR_BOT_TOKEN=bot_token) as api,
    ):
        assert bot.get("/diagnose").status_code == 401  # the bot token applies here too
        direct = bot.get("/diagnose", headers={"Authorization": f"Bearer {bot_token}"})
        assert direct.status_code == 200
        body = direct.json()
        assert body["healthy"] is False
        assert (body["verdict"]["layer"], body["verdict"]["cause"]) == ("tcp", "tcp_refused")
        assert body["via"] == dead_proxy

        assert api.get("/admin/wa/diagnose").status_code == 401
        through_bridge = api.get("/admin/wa/diagnose", headers=BEARER)
        assert through_bridge.status_code == 200
        verdict = through_bridge.json()["verdict"]
        assert (verdict["layer"], verdict["cause"]) == ("tcp", "tcp_refused")
        assert verdict["fixes"]


def test_bridge_diagnose_with_the_bot_down_is_503_like_every_admin_route(tmp_path: Path) -> None:
    with running_bridge(tmp_path / "api", f"http://127.0.0.1:{free_port()}") as api:
        reply = api.get("/admin/wa/diagnose", headers=BEARER)
    assert reply.status_code == 503  # the bridge's answer for a bot that is down
    assert reply.json()["error"] == "bot_unreachable"
