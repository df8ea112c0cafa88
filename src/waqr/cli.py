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
        timeout_graceful_shutdown=10,
    )
    await uvicorn.Server(config).serve()


def run_bot(settings: Settings) -> int:
    from waqr.bot.app import create_app
    from waqr.bot.registry import SessionRegistry

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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings_for(args)
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "bot":
            return run_bot(settings)
    except (ConfigError, DataDirLocked) as exc:
        print(f"waqr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
