"""The connection doctor names the layer that fails and why, each failure produced for real on
loopback; every case through the library, a representative set through ``waqr doctor --json``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.doctor.conftest import Probe, RunCli, sim_env
from tests.doctor.faultservers import (
    LOOPBACK,
    closed_port,
    full_backlog_listener,
    http_proxy,
    server_context,
    socks_proxy,
    websocket_server,
)
from tests.pki import make_authority
from waqr.doctor import Layer, Outcome, Report
from waqr.sim.app import Simulator
from waqr.sim.frontdoor import FrontDoorFault
from waqr.waproto.xeddsa import SigningKey

pytestmark = pytest.mark.timeout(120)


def failed(report: Report) -> tuple[str, str | None]:
    verdict = report.verdict
    assert verdict is not None, report.as_json()
    return verdict.layer.value, verdict.cause


def direct(port: int, ca: Path | None = None) -> dict[str, str]:
    env = {"WAQR_DOCTOR_HOST": LOOPBACK, "WAQR_DOCTOR_PORT": str(port)}
    if ca is not None:
        env["WAQR_DOCTOR_CA_BUNDLE"] = str(ca)
    return env


# --- healthy ------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["http", "socks5"])
async def test_the_simulator_is_healthy_through_either_proxy(
    probe: Probe, simulator: Simulator, via: str
) -> None:
    report = await probe(**sim_env(simulator, via=via))
    assert report.healthy, report.as_json()
    outcomes = {step.layer: step.outcome for step in report.steps}
    for layer in (Layer.CONFIG, Layer.DNS, Layer.TCP, Layer.PROXY, Layer.TLS):
        assert outcomes[layer] is Outcome.OK
    assert outcomes[Layer.WEBSOCKET] is Outcome.OK
    assert outcomes[Layer.NOISE] is Outcome.OK
    assert all(step.elapsed_ms >= 0 for step in report.steps)


async def test_cli_healthy_simulator_exits_0(run_cli: RunCli, simulator: Simulator) -> None:
    run = await run_cli(**sim_env(simulator))
    assert run.exit_code == 0, run.report
    assert run.report["healthy"] is True
    assert [s["layer"] for s in run.report["steps"]][:7] == [
        "config",
        "dns",
        "tcp",
        "proxy",
        "tls",
        "websocket",
        "noise",
    ]


# --- DNS and TCP --------------------------------------------------------------------------


async def test_unresolvable_name_fails_dns(probe: Probe) -> None:
    report = await probe(WAQR_DOCTOR_HOST="no-such-host.invalid")
    assert failed(report) == ("dns", "dns_unresolvable")
    tcp = next(s for s in report.steps if s.layer is Layer.TCP)
    assert tcp.outcome is Outcome.SKIPPED


async def test_cli_unresolvable_proxy_name_fails_dns(run_cli: RunCli) -> None:
    run = await run_cli(WA_PROXY="http://proxy.invalid:3128")
    assert run.exit_code == 1
    assert (run.verdict["layer"], run.verdict["cause"]) == ("dns", "dns_unresolvable")


async def test_refused_port_fails_tcp_as_refused(probe: Probe, run_cli: RunCli) -> None:
    port = closed_port()
    assert failed(await probe(**direct(port))) == ("tcp", "tcp_refused")
    run = await run_cli(**direct(port))
    assert run.exit_code == 1
    assert (run.verdict["layer"], run.verdict["cause"]) == ("tcp", "tcp_refused")


async def test_listener_with_full_accept_queue_gives_no_answer(probe: Probe) -> None:
    with full_backlog_listener() as port:
        report = await probe(**direct(port))
    assert failed(report) == ("tcp", "tcp_no_answer")


async def test_refused_proxy_port_fails_tcp_with_proxy_advice(probe: Probe) -> None:
    report = await probe(WA_PROXY=f"http://{LOOPBACK}:{closed_port()}")
    assert failed(report) == ("tcp", "tcp_refused")
    assert report.verdict is not None
    assert any("WA_PROXY" in fix for fix in report.verdict.fixes)


# --- the proxy ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["403 Forbidden", "502 Bad Gateway"])
async def test_proxy_refusing_connect_is_quoted(probe: Probe, status: str) -> None:
    answer = f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode()
    async with http_proxy(answer) as port:
        report = await probe(WA_PROXY=f"http://{LOOPBACK}:{port}")
    assert failed(report) == ("proxy", "proxy_refused")
    assert report.verdict is not None
    assert status in report.verdict.detail


async def test_cli_proxy_refusing_connect(run_cli: RunCli) -> None:
    async with http_proxy(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n") as port:
        run = await run_cli(WA_PROXY=f"http://{LOOPBACK}:{port}")
    assert run.exit_code == 1
    assert (run.verdict["layer"], run.verdict["cause"]) == ("proxy", "proxy_refused")
    assert "403 Forbidden" in run.verdict["detail"]


async def test_proxy_demanding_auth_is_407(probe: Probe, run_cli: RunCli) -> None:
    challenge = (
        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
    )
    async with http_proxy(challenge) as port:
        report = await probe(WA_PROXY=f"http://{LOOPBACK}:{port}")
        run = await run_cli(WA_PROXY=f"http://{LOOPBACK}:{port}")
    assert failed(report) == ("proxy", "proxy_auth_required")
    assert (run.verdict["layer"], run.verdict["cause"]) == ("proxy", "proxy_auth_required")


async def test_socks_proxy_wanting_credentials_is_auth_required(probe: Probe) -> None:
    async with socks_proxy(credentials=("user", "right")) as port:
        report = await probe(WA_PROXY=f"socks5://user:wrong@{LOOPBACK}:{port}")
    assert failed(report) == ("proxy", "proxy_auth_required")


async def test_socks_proxy_ruleset_refusal(probe: Probe) -> None:
    async with socks_proxy(credentials=None) as port:
        report = await probe(WA_PROXY=f"socks5://{LOOPBACK}:{port}")
    assert failed(report) == ("proxy", "proxy_refused")


async def test_simulator_proxy_403_fault(probe: Probe, simulator: Simulator) -> None:
    await simulator.front_door.set_fault(FrontDoorFault.PROXY_FORBIDDEN)
    assert failed(await probe(**sim_env(simulator))) == ("proxy", "proxy_refused")


# --- TLS ----------------------------------------------------------------------------------


async def test_untrusted_certificate_is_interception(
    probe: Probe, run_cli: RunCli, tmp_path: Path
) -> None:
    trusted = make_authority(tmp_path, "trusted ca")
    stranger = make_authority(tmp_path, "interceptor ca")
    async with websocket_server(server_context(tmp_path, stranger)) as port:
        report = await probe(**direct(port, trusted.path))
        run = await run_cli(**direct(port, trusted.path))
    assert failed(report) == ("tls", "tls_untrusted_issuer")
    assert report.verdict is not None
    assert "interceptor ca" in report.verdict.detail  # the issuer is named
    assert (run.verdict["layer"], run.verdict["cause"]) == ("tls", "tls_untrusted_issuer")


async def test_simulator_untrusted_tls_fault(probe: Probe, simulator: Simulator) -> None:
    await simulator.front_door.set_fault(FrontDoorFault.UNTRUSTED_TLS)
    assert failed(await probe(**sim_env(simulator))) == ("tls", "tls_untrusted_issuer")


async def test_certificate_not_yet_valid_points_at_the_clock(
    probe: Probe, run_cli: RunCli, tmp_path: Path
) -> None:
    ca = make_authority(tmp_path, "trusted ca")
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    async with websocket_server(server_context(tmp_path, ca, valid_from=tomorrow)) as port:
        report = await probe(**direct(port, ca.path))
        run = await run_cli(**direct(port, ca.path))
    assert failed(report) == ("tls", "certificate_not_yet_valid")
    assert report.verdict is not None
    assert "clock" in report.verdict.detail
    assert "Date header" in report.verdict.detail  # the server's Date was read for the offset
    assert any("clock" in fix for fix in report.verdict.fixes)
    assert (run.verdict["layer"], run.verdict["cause"]) == ("tls", "certificate_not_yet_valid")


async def test_silent_after_tls_client_hello(probe: Probe, simulator: Simulator) -> None:
    await simulator.front_door.set_fault(FrontDoorFault.SILENT_AFTER_CLIENT_HELLO)
    assert failed(await probe(**sim_env(simulator))) == ("tls", "tls_no_answer")


# --- WebSocket and Noise ------------------------------------------------------------------


async def test_websocket_403(probe: Probe, run_cli: RunCli, simulator: Simulator) -> None:
    await simulator.front_door.set_fault(FrontDoorFault.WS_FORBIDDEN)
    report = await probe(**sim_env(simulator))
    assert failed(report) == ("websocket", "websocket_forbidden")
    assert report.verdict is not None
    assert "403" in report.verdict.detail
    run = await run_cli(**sim_env(simulator))
    assert (run.verdict["layer"], run.verdict["cause"]) == ("websocket", "websocket_forbidden")


async def test_closed_right_after_client_hello_is_an_ip_refusal(
    probe: Probe, run_cli: RunCli, tmp_path: Path
) -> None:
    ca = make_authority(tmp_path, "trusted ca")
    async with websocket_server(server_context(tmp_path, ca), "close_after_hello") as port:
        report = await probe(**direct(port, ca.path))
        run = await run_cli(**direct(port, ca.path))
    assert failed(report) == ("noise", "noise_refused")
    assert report.verdict is not None
    assert any("WA_PROXY" in fix for fix in report.verdict.fixes)
    assert any("another host" in fix for fix in report.verdict.fixes)
    lower = [s for s in report.steps if s.layer in (Layer.TCP, Layer.TLS, Layer.WEBSOCKET)]
    assert all(step.outcome is Outcome.OK for step in lower)
    assert (run.verdict["layer"], run.verdict["cause"]) == ("noise", "noise_refused")


async def test_silent_after_client_hello(probe: Probe, tmp_path: Path) -> None:
    ca = make_authority(tmp_path, "trusted ca")
    async with websocket_server(server_context(tmp_path, ca), "silent") as port:
        report = await probe(**direct(port, ca.path))
    assert failed(report) == ("noise", "noise_silent")


async def test_server_hello_not_signed_by_the_trusted_root(
    probe: Probe, run_cli: RunCli, simulator: Simulator
) -> None:
    stranger_root = SigningKey.generate().public.hex()
    env = {**sim_env(simulator), "WAQR_DOCTOR_ROOT_KEY": stranger_root}
    report = await probe(**env)
    assert failed(report) == ("noise", "noise_untrusted_certificate")
    run = await run_cli(**env)
    assert (run.verdict["layer"], run.verdict["cause"]) == ("noise", "noise_untrusted_certificate")


# --- configuration ------------------------------------------------------------------------


async def test_cli_malformed_proxy_url_fails_config(run_cli: RunCli) -> None:
    run = await run_cli(WA_PROXY="ftp://proxy:21")
    assert run.exit_code == 1
    assert (run.verdict["layer"], run.verdict["cause"]) == ("config", "invalid_configuration")
    assert "WA_PROXY" in run.verdict["detail"]


async def test_unwritable_data_dir_fails_config(probe: Probe, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    report = await probe(WAQR_DATA_DIR=str(blocker / "data"), WAQR_DOCTOR_PORT=str(closed_port()))
    assert failed(report) == ("config", "data_dir_not_writable")


async def test_human_output_has_one_line_per_layer_and_the_fixes(probe: Probe) -> None:
    from waqr.doctor.command import render

    report = await probe(**direct(closed_port()))
    lines = render(report).splitlines()
    layer_lines = lines[1 : 1 + len(Layer)]
    assert [line.split()[1] for line in layer_lines] == [layer.value for layer in Layer]
    assert layer_lines[2].split()[0] == "FAIL"
    assert "verdict: tcp failed (tcp_refused)" in lines
    assert any(line.startswith("  fix: ") for line in lines)


async def test_account_layer_reports_what_the_bot_last_saw(
    base_env: dict[str, str], simulator: Simulator
) -> None:
    from waqr.doctor import diagnose
    from waqr.settings import load_settings

    settings = load_settings({**base_env, **sim_env(simulator)})
    settings.auth_dir.mkdir(parents=True)
    (settings.auth_dir / "store.db").write_bytes(b"credentials")
    outdated = {
        "status": "failed",
        "lastDisconnectReason": {
            "code": "client_outdated",
            "message": "WhatsApp rejected the client as outdated (405).",
            "hint": "Upgrade waqr.",
        },
    }
    report = await diagnose(settings, bot_status=outdated)
    assert failed(report) == ("account", "whatsapp_405_client_outdated")
    assert report.verdict is not None
    assert "neonize 0.5.2" in report.verdict.detail  # the installed engine is named
    fine = await diagnose(
        settings, bot_status={"status": "connected", "lastDisconnectReason": None}
    )
    assert fine.healthy
    assert fine.steps[-1].layer is Layer.ACCOUNT
    assert fine.steps[-1].outcome is Outcome.OK
