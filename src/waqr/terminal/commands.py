"""The argparse side of ``waqr status``, ``waqr link`` and ``waqr send``, and the one place
their settings become a bridge client. Nothing here logs: the terminal is the operator's, and
the token travels only in the Authorization header."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING

from waqr.errors import ConfigError, InvalidPhoneNumber

if TYPE_CHECKING:
    from waqr.ui.client import BridgeClient

COMMANDS = frozenset({"status", "link", "send"})

EXIT_CODES = """exit codes:
  0    {ok}
  1    {not_ok}
  2    could not ask: bad settings, the bridge unreachable, or the token refused
  130  interrupted (Ctrl-C)"""

CONNECTION = (
    "The bridge is WA_QR_API_URL (default http://127.0.0.1:8000) and the token "
    "WA_QR_BRIDGE_TOKEN, as for the UI; both may also come from a .env file."
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status`` and ``link`` to the ``waqr`` parser."""
    formatter = argparse.RawDescriptionHelpFormatter
    status = sub.add_parser(
        "status",
        help="Show the WhatsApp session's state, why, and since when (asks the bridge).",
        description=textwrap.fill(
            "Show the WhatsApp session's state, the reason with its next step, and since "
            "when. " + CONNECTION
        ),
        epilog=EXIT_CODES.format(ok="connected", not_ok="not connected (or the bot is down)"),
        formatter_class=formatter,
    )
    status.add_argument("--json", action="store_true", help="print the bridge's status JSON")
    link = sub.add_parser(
        "link",
        help="Link WhatsApp from this terminal: draw the QR (or show a pairing code) and wait.",
        description=textwrap.fill(
            "Draw the QR code in the terminal, redrawn on every rotation with its countdown, "
            "until the phone has scanned it and the session is connected. With --phone, show "
            "a pairing code to type on the phone instead. " + CONNECTION
        ),
        epilog=EXIT_CODES.format(
            ok="linked (or already linked)",
            not_ok="not linked: the codes ran out unused, the session needs attention, or "
            "--timeout passed",
        ),
        formatter_class=formatter,
    )
    link.add_argument(
        "--phone",
        metavar="+E.164",
        help="link by phone number: request a pairing code for this number (e.g. +4915112345678)",
    )
    link.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="give up after this long (default: never)"
    )
    send = sub.add_parser(
        "send",
        help="Send a WhatsApp text through the linked account (asks the bridge).",
        description=textwrap.fill(
            "Send TEXT to TO (+E.164, or a JID) through the linked account. Prints the "
            "message id; with --wait, follows it until WhatsApp reports it delivered. " + CONNECTION
        ),
        epilog=EXIT_CODES.format(
            ok="accepted (with --wait: delivered)",
            not_ok="refused (not linked, bad number or text, rate limited), failed, or not "
            "delivered within --wait",
        ),
        formatter_class=formatter,
    )
    send.add_argument(
        "to", metavar="TO", help="the recipient: +E.164 (e.g. +4915112345678) or a JID"
    )
    send.add_argument("text", metavar="TEXT", help="the message text")
    send.add_argument("--reply-to", metavar="ID", help="quote the message with this id")
    send.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="run again with the same key and nothing is sent twice",
    )
    send.add_argument(
        "--wait", type=float, metavar="SECONDS", help="wait this long for the delivery receipt"
    )
    for parser in (status, link, send):
        parser.add_argument("--url", help="the bridge's URL (default: WA_QR_API_URL)")


def run(args: argparse.Namespace) -> int:
    from waqr.settings import load_settings
    from waqr.terminal import Exit
    from waqr.ui.client import BridgeClient, UiError

    try:
        settings = load_settings({"WA_QR_API_URL": args.url} if args.url else None)
        if not settings.token_list:
            raise ConfigError(
                "WA_QR_BRIDGE_TOKEN is not set: export the bridge's token (the one `waqr api` "
                "or `waqr up` uses) before running this command."
            )
        phone = _phone(getattr(args, "phone", None))
    except (ConfigError, InvalidPhoneNumber) as exc:
        sys.stderr.write(f"waqr: {exc}\n")
        return Exit.CANNOT_ASK
    api_url, token = settings.ui_api_url, settings.token_list[0]

    def client() -> BridgeClient:
        return BridgeClient(api_url, token)

    main = client()
    try:
        if args.command == "status":
            from waqr.terminal.status import run_status

            return run_status(main, sys.stdout, sys.stderr, as_json=args.json)
        if args.command == "send":
            from waqr.terminal.send import run_send

            return run_send(
                main,
                sys.stdout,
                sys.stderr,
                to=args.to,
                text=args.text,
                reply_to=args.reply_to,
                idempotency_key=args.idempotency_key,
                wait=args.wait,
            )
        return _link(main, client, phone, args.timeout)
    except UiError as error:
        sys.stderr.write(f"waqr: {error.message}\n")
        return Exit.CANNOT_ASK
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    finally:
        main.close()


def _phone(raw: str | None) -> str | None:
    """``+E.164`` as the bridge takes it, refused here with the reason when malformed."""
    if raw is None:
        return None
    from waqr.phone import parse_e164

    return "+" + parse_e164(raw)


def _link(
    main: BridgeClient,
    client: Callable[[], BridgeClient],
    phone: str | None,
    timeout: float | None,
) -> int:
    from waqr.terminal.link import Linker
    from waqr.terminal.screen import Screen
    from waqr.terminal.watch import Watcher

    linker = Linker(
        main,
        Watcher(client),
        Screen(sys.stdout, tty=sys.stdout.isatty()),
        phone=phone,
        timeout=timeout,
    )
    return linker.run()
