"""The ``waqr`` command: one subcommand per service. Thin: parse, load settings, delegate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from waqr import __version__
from waqr.errors import ConfigError, DataDirLocked
from waqr.logs import configure_logging, log_event
from waqr.settings import Settings, load_settings

log = logging.getLogger("waqr")


def _service_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    host_var: str,
    port_var: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("--host", help=f"address to listen on (env {host_var})")
    parser.add_argument("--port", type=int, help=f"port to listen on (env {port_var})")
    parser.set_defaults(host_var=host_var, port_var=port_var)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="waqr", description="Self-hosted WhatsApp linking gateway"
    )
    parser.add_argument("--version", action="version", version=f"waqr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _service_parser(
        sub,
        "bot",
        "Run the internal linking service (the WhatsApp engine supervisor).",
        "WAQR_BOT_HOST",
        "WAQR_BOT_PORT",
    )
    _service_parser(
        sub,
        "api",
        "Run the public API bridge (needs WA_QR_BRIDGE_TOKEN).",
        "WAQR_API_HOST",
        "WAQR_API_PORT",
    )
    _service_parser(
        sub,
        "ui",
        "Run the Streamlit UI (talks to the bridge at WA_QR_API_URL).",
        "WAQR_UI_HOST",
        "WAQR_UI_PORT",
    )
    _service_parser(
        sub,
        "up",
        "Run the bot and the bridge together on embedded defaults (generates a token if none).",
        "WAQR_API_HOST",
        "WAQR_API_PORT",
    )
    doctor = sub.add_parser(
        "doctor",
        help="Probe the path to WhatsApp layer by layer and say what to fix.",
        description="Probe the path to WhatsApp (configuration, DNS, TCP, proxy, TLS, "
        "WebSocket, Noise) from this host; exit 0 healthy, 1 a layer failed, 2 could not run.",
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    sim = sub.add_parser(
        "sim",
        help="Run the local WhatsApp Web simulator (try waqr without a phone; tests use it).",
        description="Run the local WhatsApp Web simulator on loopback and print how to point a "
        "bot at it.",
    )
    sim.add_argument("--host", default="127.0.0.1", help="address (loopback only by design)")
    sim.add_argument("--port", type=int, default=0, help="port of the phone/control API")
    sim.add_argument("--state-dir", default=".waqr-sim", help="where its CA and root key live")
    return parser


def _settings_for(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "host", None):
        overrides[args.host_var] = args.host
    if getattr(args, "port", None) is not None:
        overrides[args.port_var] = args.port
    return load_settings(overrides)


async def _serve(app: object, host: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_config=None,  # keep waqr's structured logging
        lifespan="on",
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default and rewrites the client
        # address before the app sees it; the bridge decides that itself (WAQR_TRUSTED_PROXIES).
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    await uvicorn.Server(config).serve()


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def run_bot(settings: Settings) -> int:
    from waqr.bot.app import create_app
    from waqr.bot.registry import SessionRegistry

    if not settings.bot_token and not _is_loopback(settings.bot_host):
        raise ConfigError(
            f"WAQR_BOT_HOST={settings.bot_host} is not a loopback address: anyone who reaches "
            "the bot could scan its QR or log it out. Set WAQR_BOT_TOKEN (and the same on the "
            "bridge), or keep the bot on 127.0.0.1."
        )
    registry = SessionRegistry(settings)
    registry.open()
    log_event(
        log,
        "bot starting",
        host=settings.bot_host,
        port=settings.bot_port,
        data_dir=str(settings.data_dir),
        proxy="configured" if settings.wa_proxy else "none",
    )
    asyncio.run(_serve(create_app(registry), settings.bot_host, settings.bot_port))
    return 0


def run_api(settings: Settings) -> int:
    from waqr.bridge.app import create_app

    if not settings.token_list:
        raise ConfigError(
            "WA_QR_BRIDGE_TOKEN is required: the bridge is public and has no default token. "
            "Set one of at least 32 characters (python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'), or use `waqr up`, which generates one."
        )
    log_event(
        log,
        "bridge starting",
        host=settings.api_host,
        port=settings.api_port,
        bot_url=settings.bot_url,
        cache="redis" if settings.redis_url else "memory",
    )
    asyncio.run(_serve(create_app(settings), settings.api_host, settings.api_port))
    return 0


def run_ui(settings: Settings) -> int:
    from waqr.ui.launch import run_ui as launch

    log_event(log, "ui starting", host=settings.ui_host, port=settings.ui_port)
    return launch(settings.ui_host, settings.ui_port, {"WA_QR_API_URL": settings.ui_api_url})


def run_up(settings: Settings) -> int:
    """Bot in a child process, bridge in this one: the whole system on one command."""
    import os
    import secrets
    import subprocess
    import time

    import httpx

    if not settings.token_list:
        token = secrets.token_urlsafe(32)
        settings = settings.model_copy(update={"bridge_tokens": token})
        generated = True
    else:
        token = settings.token_list[0]
        generated = False
    if not settings.bot_token:
        # The bot answers only its own bridge, even on loopback (other local users).
        settings = settings.model_copy(update={"bot_token": secrets.token_urlsafe(32)})
    bot_url = f"http://{settings.bot_host}:{settings.bot_port}"
    env = {
        **os.environ,
        "WAQR_BOT_HOST": settings.bot_host,
        "WAQR_BOT_PORT": str(settings.bot_port),
        "WAQR_BOT_TOKEN": settings.bot_token or "",
    }
    bot = subprocess.Popen([sys.executable, "-m", "waqr.cli", "bot"], env=env)
    ui = None
    try:
        deadline = time.monotonic() + 30
        while True:
            if bot.poll() is not None:
                print("waqr: the bot did not start (see its log above)", file=sys.stderr)
                return 1
            try:
                if httpx.get(bot_url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                print("waqr: the bot did not answer within 30 s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        shown = "localhost" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
        api_url = f"http://{shown}:{settings.api_port}"
        from waqr.ui.launch import spawn_ui

        ui = spawn_ui(
            settings.ui_host,
            settings.ui_port,
            {
                "WA_QR_API_URL": f"http://127.0.0.1:{settings.api_port}",
                "WA_QR_BRIDGE_TOKEN": token,
            },
        )
        print(f"\nwaqr is up.\n  UI:              http://{settings.ui_host}:{settings.ui_port}")
        print(f"  bridge (public): {api_url}   docs: {api_url}/docs")
        print(f"  bot (internal):  {bot_url}")
        if generated:
            print(f"  token (generated for this run): {token}")
        else:
            print("  token: WA_QR_BRIDGE_TOKEN from your environment")
        print(f'  try: curl -H "Authorization: Bearer $TOKEN" {api_url}/admin/wa/qr\n', flush=True)
        settings = settings.model_copy(update={"bot_url": bot_url})
        return run_api(settings)
    finally:
        for child in (ui, bot):
            if child is not None and child.poll() is None:
                child.terminate()
                try:
                    child.wait(20)
                except subprocess.TimeoutExpired:
                    child.kill()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        from waqr.doctor.command import run_doctor

        return run_doctor(as_json=args.json)
    if args.command == "sim":
        from pathlib import Path

        from waqr.sim.app import main as run_sim

        logging.basicConfig(level=logging.INFO)
        try:
            run_sim(host=args.host, port=args.port, state_dir=Path(args.state_dir))
        except KeyboardInterrupt:
            return 130
        return 0
    try:
        settings = _settings_for(args)
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "bot":
            return run_bot(settings)
        if args.command == "api":
            return run_api(settings)
        if args.command == "ui":
            return run_ui(settings)
        if args.command == "up":
            return run_up(settings)
    except (ConfigError, DataDirLocked) as exc:
        print(f"waqr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
