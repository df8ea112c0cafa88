"""The bot's doctor aimed at the simulator, with the real engine running beside it: healthy,
then each front-door fault named by its layer, through the bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import SimThread, running_on
from tests.integration.test_bridge import BEARER, running_bridge
from waqr.sim.frontdoor import FrontDoorFault

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_bridge_diagnose_follows_the_simulators_faults(sim: SimThread, tmp_path: Path) -> None:
    assert sim.sim is not None
    aim = {
        "WAQR_DOCTOR_CA_BUNDLE": str(sim.sim.ca_cert_path),
        "WAQR_DOCTOR_ROOT_KEY": sim.sim.root_public_key.hex(),
        "WAQR_DOCTOR_NOISE_TIMEOUT": "5",
    }
    with (
        running_on(sim, tmp_path / "bot", **aim) as bot,
        running_bridge(tmp_path / "api", bot.url) as api,
    ):
        healthy = api.get("/admin/wa/diagnose", headers=BEARER).json()
        assert healthy["healthy"] is True, healthy
        assert [s["outcome"] for s in healthy["steps"][:7]] == ["ok"] * 7

        for fault, layer, cause in (
            (FrontDoorFault.WS_FORBIDDEN, "websocket", "websocket_forbidden"),
            (FrontDoorFault.PROXY_FORBIDDEN, "proxy", "proxy_refused"),
            (FrontDoorFault.UNTRUSTED_TLS, "tls", "tls_untrusted_issuer"),
        ):
            sim.set_front_door_fault(fault)
            verdict = api.get("/admin/wa/diagnose", headers=BEARER).json()["verdict"]
            assert (verdict["layer"], verdict["cause"]) == (layer, cause), fault
        sim.set_front_door_fault(FrontDoorFault.NONE)
