"""One layered probe, bottom up, each step timed; the first failure stops it and the layers
above are reported as skipped."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from waqr.doctor import chat, checks, network, tlslayer
from waqr.doctor.target import WS_PATH, ProbeTarget
from waqr.doctor.verdict import Layer, LayerFailed, Outcome, Report, Step
from waqr.settings import Settings

T = TypeVar("T")


class _Run:
    def __init__(self, report: Report) -> None:
        self.report = report

    async def step(
        self, layer: Layer, action: Callable[[], Awaitable[T]], describe: Callable[[T], str]
    ) -> T:
        started = time.monotonic()
        try:
            result = await action()
        except LayerFailed as failed:
            elapsed = (time.monotonic() - started) * 1000
            self.report.steps.append(
                Step(layer, Outcome.FAILED, failed.detail, elapsed, failed.cause, failed.fixes)
            )
            raise
        elapsed = (time.monotonic() - started) * 1000
        self.report.steps.append(Step(layer, Outcome.OK, describe(result), elapsed))
        return result

    def skip_rest(self, *, after: Layer) -> None:
        layers = list(Layer)
        for layer in layers[layers.index(after) + 1 :]:
            if layer is Layer.ACCOUNT:
                continue  # reported on its own: it does not depend on the network path
            self.report.steps.append(Step(layer, Outcome.SKIPPED, f"not probed: {after} failed"))


async def diagnose(
    settings: Settings,
    *,
    target: ProbeTarget | None = None,
    bot_status: dict[str, Any] | None = None,
) -> Report:
    """Probe every layer; ``bot_status`` is the bot's /status when it runs (account layer)."""
    target = target or ProbeTarget.from_settings(settings)
    via = target.proxy.address if target.proxy else None
    report = Report(target=target.address, via=via)
    run = _Run(report)
    try:
        await run.step(Layer.CONFIG, _sync(lambda: checks.check_config(settings)), str)
        await _network(run, target)
    except LayerFailed:
        run.skip_rest(after=_last_reported(report))
    if checks.has_credentials(settings):
        with contextlib.suppress(LayerFailed):
            await run.step(Layer.ACCOUNT, _sync(lambda: checks.check_account(bot_status)), str)
    else:
        report.steps.append(Step(Layer.ACCOUNT, Outcome.SKIPPED, "no credentials: not linked"))
    return report


async def _network(run: _Run, target: ProbeTarget) -> None:
    host, port = network.next_hop(target)
    timeout = target.step_timeout
    addresses = await run.step(
        Layer.DNS,
        lambda: network.resolve(host, port, timeout),
        lambda found: f"{host} -> {', '.join(found)}",
    )
    sock = await run.step(
        Layer.TCP,
        lambda: network.connect(addresses, port, timeout, proxy=target.proxy is not None),
        lambda s: f"connected to {_peer(s)}",
    )
    proxy = target.proxy

    async def reopen() -> socket.socket:
        """A fresh path to the target, for a second look at its certificate."""
        if proxy is not None:
            return await network.tunnel(proxy, target.host, target.port, timeout)
        return await network.connect(addresses, port, timeout)

    if proxy is not None:
        sock.close()  # it proved the proxy answers; python-socks dials its own
        sock = await run.step(
            Layer.PROXY,
            lambda: network.tunnel(proxy, target.host, target.port, timeout),
            lambda _s: f"CONNECT {target.address} accepted by {proxy.address}",
        )
    else:
        run.report.steps.append(Step(Layer.PROXY, Outcome.SKIPPED, "no WA_PROXY: direct"))
    try:
        streams = await run.step(
            Layer.TLS,
            lambda: tlslayer.handshake(sock, target, reopen),
            lambda s: f"certificate for {target.host} verified (issuer {s.issuer})",
        )
    except BaseException:
        sock.close()
        raise
    try:
        socket_ = await run.step(
            Layer.WEBSOCKET,
            lambda: chat.upgrade(streams, target),
            lambda _c: f"upgraded at {WS_PATH} (101)",
        )
        await run.step(Layer.NOISE, lambda: chat.noise_hello(socket_, target), str)
    finally:
        streams.writer.close()


def _last_reported(report: Report) -> Layer:
    return report.steps[-1].layer


def _peer(sock: Any) -> str:
    host, port = sock.getpeername()[:2]
    return f"{host}:{port}"


def _sync(function: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def run() -> T:
        return function()

    return run
