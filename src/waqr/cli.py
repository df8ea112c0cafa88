"""The ``waqr`` command: one subcommand per service. Thin: parse, load settings, delegate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from waqr import __version__
from waqr.errors import ConfigError, DataDirLocked
from waqr.logs import configure_logging, log_event
from waqr.settings import Settings, load_settings
from waqr.terminal import commands as terminal_commands

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
    api = _service_parser(
        sub,
        "api",
        "Run the public API bridge (needs WA_QR_BRIDGE_TOKEN).",
        "WAQR_API_HOST",
        "WAQR_API_PORT",
    )
    api.add_argument(
        "--workers",
        type=int,
        help="worker processes (env WAQR_API_WORKERS, default 1); each follows the bot itself",
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
    terminal_commands.register(sub)
    return parser


def _settings_for(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "host", None):
        overrides[args.host_var] = args.host
    if getattr(args, "port", None) is not None:
        overrides[args.port_var] = args.port
    for flag, var in (
        ("bot_port", "WAQR_BOT_PORT"),
        ("ui_port", "WAQR_UI_PORT"),
        ("workers", "WAQR_API_WORKERS"),
    ):
        if getattr(args, flag, None) is not None:
            overrides[var] = getattr(args, flag)
    return load_settings(overrides)


def uvicorn_config(
    app: object, host: str, port: int, tls: tuple[Path, Path] | None = None
) -> uvicorn.Config:
    """uvicorn's configuration for a waqr service; with ``tls`` (certificate, key) HTTPS only."""
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
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )


async def _serve(app: object, host: str, port: int, tls: tuple[Path, Path] | None = None) -> None:
    import uvicorn

    await uvicorn.Server(uvicorn_config(app, host, port, tls)).serve()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's event loop: uvloop where it is installed (it is, with
    uvicorn[standard]), the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _check_tls(tls: tuple[Path, Path] | None, server: str) -> None:
    """Load the certificate and key now, so a wrong file is one line naming the variables
    rather than uvicorn's traceback."""
    import ssl

    if tls is None:
        return
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls[0], tls[1])
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"WAQR_{server}_TLS_CERT/WAQR_{server}_TLS_KEY cannot be used ({exc.strerror or exc}):"
            " they must be a PEM certificate (chain) and its unencrypted PEM private key"
        ) from None


def _check_ca_file(settings: Settings) -> None:
    import ssl

    from waqr.bridge.botclient import bot_tls_context

    try:
        bot_tls_context(settings.bot_ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"WAQR_BOT_CA_FILE cannot be used ({exc.strerror or exc}): it must hold PEM CA "
            "certificates"
        ) from None


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
    _check_tls(settings.bot_tls, "BOT")
    registry = SessionRegistry(settings)
    registry.open()
    log_event(
        log,
        "bot starting",
        host=settings.bot_host,
        port=settings.bot_port,
        data_dir=str(settings.data_dir),
        proxy="configured" if settings.wa_proxy else "none",
        tls=settings.bot_tls is not None,
    )
    run_loop(_serve(create_app(registry), settings.bot_host, settings.bot_port, settings.bot_tls))
    return 0


def run_api(settings: Settings) -> int:
    from waqr.bridge.app import create_app

    if not settings.token_list:
        raise ConfigError(
            "WA_QR_BRIDGE_TOKEN is required: the bridge is public and has no default token. "
            "Set one of at least 32 characters (python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'), or use `waqr up`, which generates one."
        )
    _check_tls(settings.api_tls, "API")
    _check_ca_file(settings)
    log_event(
        log,
        "bridge starting",
        host=settings.api_host,
        port=settings.api_port,
        bot_url=settings.bot_url,
        cache="redis" if settings.redis_url else "memory",
        workers=settings.api_workers,
        tls=settings.api_tls is not None,
    )
    if settings.api_workers > 1:
        import uvicorn

        # Each worker process builds its own bridge from the environment (its own bot event
        # stream, keepalive and failure counter); uvicorn supervises them.
        os.environ.update(
            {
                "WAQR_API_HOST": settings.api_host,
                "WAQR_API_PORT": str(settings.api_port),
                "WAQR_API_WORKERS": str(settings.api_workers),
            }
        )
        uvicorn.run(
            "waqr.bridge.app:create_app_from_env",
            factory=True,
            host=settings.api_host,
            port=settings.api_port,
            workers=settings.api_workers,
            log_config=None,
            proxy_headers=False,
            timeout_graceful_shutdown=10,
            ssl_certfile=str(settings.api_tls[0]) if settings.api_tls else None,
            ssl_keyfile=str(settings.api_tls[1]) if settings.api_tls else None,
        )
        return 0
    app = create_app(settings)
    run_loop(_serve(app, settings.api_host, settings.api_port, settings.api_tls))
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
    if args.command in terminal_commands.COMMANDS:
        return terminal_commands.run(args)  # the operator's terminal: no service logging
    if args.command == "doctor":
        from waqr.doctor.command import run_doctor

        return run_doctor(as_json=args.json)
    if args.command == "sim":
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
