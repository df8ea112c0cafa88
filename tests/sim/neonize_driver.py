"""Child process for the end-to-end tests: the real neonize client, reporting events as JSON lines.

Run as ``python neonize_driver.py STORE PROXY_URL [pair-code PHONE]`` with ``SSL_CERT_FILE`` and a
``PYTHONPATH`` holding a neonize patched to trust the simulator. It never runs in the pytest
process: neonize's Go side can abort the process that hosts it.
Each stdout line is one JSON object: {"event": name, ...}. Commands come on stdin (see
``follow_commands``); a driver whose stdin is not a pipe simply takes none.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from typing import Any

EVENT_FD = 1  # replaced in main(): the Go side prints to fd 1 too, so events get their own fd


def emit(event: str, **fields: Any) -> None:
    os.write(EVENT_FD, (json.dumps({"event": event, **fields}) + "\n").encode())


async def run(store: str, proxy: str, pair_phone: str | None) -> None:
    from neonize._binder import ProxySettings
    from neonize.aioze import events as ev
    from neonize.aioze.client import NewAClient
    from neonize.events import UndecryptableMessageEv

    client = NewAClient(store)

    @client.event.qr
    async def on_qr(_: Any, data: bytes) -> None:
        emit("qr", code=data.decode())

    simple = {
        ev.ConnectedEv: "connected",
        ev.DisconnectedEv: "disconnected",
        ev.StreamReplacedEv: "stream_replaced",
        ev.ClientOutdatedEv: "client_outdated",
        ev.KeepAliveRestoredEv: "keepalive_restored",
    }
    for event_type, name in simple.items():
        client.event(event_type)(lambda _c, _m, name=name: _emit_async(name))

    @client.event(ev.PairStatusEv)
    async def on_pair(_: Any, message: Any) -> None:
        emit(
            "pair_status",
            jid=f"{message.ID.User}:{message.ID.Device}@{message.ID.Server}",
            error=message.Error,
        )

    @client.event(ev.LoggedOutEv)
    async def on_logged_out(_: Any, message: Any) -> None:
        emit("logged_out", reason=int(message.Reason), on_connect=bool(message.OnConnect))

    @client.event(ev.ConnectFailureEv)
    async def on_failure(_: Any, message: Any) -> None:
        emit("connect_failure", reason=int(message.Reason), message=message.Message)

    @client.event(ev.TemporaryBanEv)
    async def on_ban(_: Any, message: Any) -> None:
        emit("temporary_ban", code=int(message.Code), expire=int(message.Expire))

    @client.event(ev.StreamErrorEv)
    async def on_stream_error(_: Any, message: Any) -> None:
        emit("stream_error", code=message.Code)

    @client.event(ev.MessageEv)
    async def on_message(_: Any, message: Any) -> None:
        source, content = message.Info.MessageSource, message.Message
        extended = content.extendedTextMessage
        emit(
            "message",
            id=message.Info.ID,
            sender=f"{source.Sender.User}@{source.Sender.Server}",
            from_me=bool(source.IsFromMe),
            text=content.conversation or extended.text,
            quoted_id=extended.contextInfo.stanzaID,
        )

    @client.event(ev.ReceiptEv)
    async def on_receipt(_: Any, receipt: Any) -> None:
        kind = ev.ReceiptEv.ReceiptType.Name(receipt.Type)
        emit("receipt", ids=list(receipt.MessageIDs), type=kind)

    @client.event(UndecryptableMessageEv)
    async def on_undecryptable(_: Any, message: Any) -> None:
        emit("undecryptable", id=message.Info.ID, reason=str(message.DecryptFailMode))

    @client.event(ev.KeepAliveTimeoutEv)
    async def on_keepalive(_: Any, message: Any) -> None:
        emit("keepalive_timeout", errors=int(message.ErrorCount))

    task = await client.connect(ProxySettings(proxy_address=proxy))
    commands = asyncio.create_task(follow_commands(client))  # held until the driver exits
    if pair_phone:
        for _ in range(100):  # wait for the registration connection before asking for a code
            await asyncio.sleep(0.1)
            try:
                code = await client.PairPhone(pair_phone, True)
            except Exception as exc:  # neonize raises its own error types
                last = str(exc)
                continue
            emit("pair_code", code=code)
            break
        else:
            emit("pair_code_error", error=last)
    await task
    commands.cancel()


async def follow_commands(client: Any) -> None:
    """Commands on stdin, one JSON object a line: {"cmd": "send", "to": phone, "text": ...}."""
    while line := await asyncio.to_thread(sys.stdin.readline):
        command = json.loads(line)
        if command.get("cmd") != "send":
            emit("command_error", error=f"unknown command {command.get('cmd')!r}")
            continue
        try:
            response = await client.send_message(command["to"], command["text"])
        except Exception as exc:  # neonize raises its own error types
            emit("send_error", error=str(exc))
        else:
            emit("sent", id=response.ID)


async def _emit_async(name: str) -> None:
    emit(name)


def main() -> None:
    global EVENT_FD
    EVENT_FD = os.dup(1)
    os.dup2(2, 1)  # whatever neonize or Go print goes to the log, not into the event stream
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)
    store, proxy = sys.argv[1], sys.argv[2]
    pair_phone = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "pair-code" else None
    try:
        asyncio.run(run(store, proxy, pair_phone))
    finally:
        os._exit(0)  # neonize's Go worker thread is not a daemon; do not join it


if __name__ == "__main__":
    main()
