"""The original deployment's bridge, rebuilt small for comparison (not shipped, not tested as a
product): FastAPI reading Redis first (key ``wa:last_qr``, 120 s TTL) and asking the bot only on
a miss, status forwarded to the bot, a 25 s keepalive that reconnects a disconnected bot.

    BASELINE_BOT_URL=http://127.0.0.1:3100 BASELINE_REDIS_URL=redis://127.0.0.1:6379/0 \\
    BASELINE_TOKEN=... BASELINE_BOT_TOKEN=... uvicorn bench.baseline:app --port 8001
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import redis.asyncio as redis
from fastapi import FastAPI, Header, HTTPException

BOT_URL = os.environ.get("BASELINE_BOT_URL", "http://127.0.0.1:3100")
REDIS_URL = os.environ.get("BASELINE_REDIS_URL", "redis://127.0.0.1:6379/0")
TOKEN = os.environ.get("BASELINE_TOKEN", "")
BOT_TOKEN = os.environ.get("BASELINE_BOT_TOKEN", "")
QR_KEY = "wa:last_qr"
QR_TTL = 120
KEEPALIVE = 25.0

state: dict[str, Any] = {}


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    headers = {"Authorization": f"Bearer {BOT_TOKEN}"} if BOT_TOKEN else None
    state["bot"] = httpx.AsyncClient(base_url=BOT_URL, timeout=10, headers=headers)
    state["redis"] = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    task = asyncio.create_task(keepalive())
    yield
    task.cancel()
    await state["bot"].aclose()
    await state["redis"].aclose()


async def keepalive() -> None:
    while True:
        await asyncio.sleep(KEEPALIVE)
        with contextlib.suppress(httpx.HTTPError):
            status = (await state["bot"].get("/status")).json()
            if not status.get("connected"):
                await state["bot"].post("/reconnect")


def check(authorization: str | None) -> None:
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(401, "unauthorized")


app = FastAPI(lifespan=lifespan)


@app.get("/admin/wa/qr")
async def qr(authorization: str | None = Header(None)) -> dict[str, Any]:
    check(authorization)
    cached = await state["redis"].get(QR_KEY)
    if cached:
        body: dict[str, Any] = json.loads(cached)
        return body
    body = (await state["bot"].get("/qr")).json()
    if body.get("qr"):
        await state["redis"].set(QR_KEY, json.dumps(body), ex=QR_TTL)
    return body


@app.get("/admin/wa/status")
async def status(authorization: str | None = Header(None)) -> dict[str, Any]:
    check(authorization)
    body: dict[str, Any] = (await state["bot"].get("/status")).json()
    return body


@app.post("/admin/wa/reconnect")
async def reconnect(reset: bool = False, authorization: str | None = Header(None)) -> Any:
    check(authorization)  # the cached QR is left as it was: the original did not clear it
    return (await state["bot"].post("/reconnect", params={"reset": str(reset).lower()})).json()
