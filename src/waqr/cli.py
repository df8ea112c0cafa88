"""The ``waqr`` command: one subcommand per service. Thin: parse, load settings, delegate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from waqr import __version__
from waqr.errors import ConfigError, DataDirLocked
from waqr.logs import configure_logging, log_event
from waqr.settings import Settings, load_settings

if TYPE_CHECKING:
    import uvicorn

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
    up = _service_parser(
        sub,
        "up",
        "Run the whole system on embedded defaults: the bot (internal, loopback), the public "
        "bridge and the UI, as one unit. Generates a bridge token if none is set and a bot "
        "token always. Prints the addresses once every part answers its health check; a part "
        "that fails stops the rest (exit 1). SIGTERM or Ctrl-C stops everything.",
        "WAQR_API_HOST",
        "WAQR_API_PORT",
    )
    up.add_argument("--bot-port", type=int, help="the bot's port (env WAQR_BOT_PORT)")
    up.add_argument("--ui-port", type=int, help="the UI's port (env WAQR_UI_PORT)")
    health = sub.add_parser(
        "health",
        help="Check that a service on this host answers its health route (container "
        "HEALTHCHECK); exit 0 healthy, 1 not.",
    )
    health.add_argument("service", choices=["bot", "api", "ui"])
    sim = sub.add_parser(
        "sim",
        help="Run the local WhatsApp Web simulator (try waqr without a phone; tests use it).",
        description="Run the local WhatsApp Web simulator on loopback and print how to point a "
        "bot at it.",
    )
    sim.add_argument(
        "--host", default="127.0.0.1", help="a loopback address; anything else is refused"
    )
    sim.add_argument("--port", type=int, default=0, help="port of the phone/control API")
    sim.add_argument("--proxy-port", type=int, default=0, help="port of its HTTP CONNECT proxy")
    sim.add_argument("--socks-port", type=int, default=0, help="port of its SOCKS5 proxy")
    sim.add_argument(
        "--state-dir",
        default=".waqr-sim",
        help="where its CA, root key and patched neonize live (default .waqr-sim, git-ignored)",
    )
    return parser


def _settings_for(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "host", None):
        overrides[args.host_var] = args.host
    if getattr(args, "port", None) is not None:
        overrides[args.port_var] = args.port
    for flag, var in (("bot_port", "WAQR_BOT_PORT"), ("ui_port", "WAQR_UI_PORT")):
        if getattr(args, flag, None) is not None:
            overrides[var] = getattr(args, flag)
    return load_settings(overrides)


def uvicorn_config(app: object, host: str, port: int) -> uvicorn.Config:
    import uvicorn

    return uvicorn.Config(
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


async def _serve(app: object, host: str, port: int) -> None:
    import uvicorn

    await uvicorn.Server(uvicorn_config(app, host, port)).serve()


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
    from waqr.ui.launch import ui_problem

    problem = ui_problem(settings)
    if problem is not None:
        raise ConfigError(problem)
    log_event(
        log, "ui starting", host=settings.ui_host, port=settings.ui_port, auth=settings.ui_auth
    )
    return launch(settings)


def run_up(settings: Settings) -> int:
    from waqr.ui.launch import ui_problem
    from waqr.up import run_up as run_stack

    problem = ui_problem(settings)
    if problem is None and settings.ui_auth == "oidc":
        problem = "waqr up runs the UI with WAQR_UI_AUTH none or password; for oidc run waqr ui"
    if problem is not None:
        raise ConfigError(problem)
    return run_stack(settings)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sim":
        from pathlib import Path

        from waqr.sim.app import main as run_sim

        logging.basicConfig(level=logging.INFO)
        logging.getLogger("websockets").setLevel(logging.WARNING)  # its per-listener lines
        try:
            run_sim(
                host=args.host,
                port=args.port,
                state_dir=Path(args.state_dir),
                proxy_port=args.proxy_port,
                socks_port=args.socks_port,
            )
        except KeyboardInterrupt:
            return 130
        except ValueError as exc:  # a host beyond loopback
            print(f"waqr sim: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # a port that cannot be bound
            ports = f"--port {args.port} --proxy-port {args.proxy_port}"
            ports += f" --socks-port {args.socks_port}"
            print(
                f"waqr sim: cannot listen on {args.host}: {exc.strerror or exc} ({ports}; "
                "0 picks a free port)",
                file=sys.stderr,
            )
            return 2
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
        if args.command == "health":
            from waqr.healthcheck import check

            healthy, line = check(args.service, settings)
            print(line, file=sys.stdout if healthy else sys.stderr)
            return 0 if healthy else 1
    except (ConfigError, DataDirLocked) as exc:
        print(f"waqr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
