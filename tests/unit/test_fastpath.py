"""The read routes' fast path answers from what was pushed, and only then."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from waqr.bridge.fastpath import PushedAnswers

ROUTE_BODY = {"status": "qr_ready", "qr": "2@asked", "source": "bot"}


def app_with(pushed: dict[str, Any] | None) -> tuple[FastAPI, list[str]]:
    routed: list[str] = []
    app = FastAPI()

    @app.get("/admin/wa/qr")
    async def qr() -> dict[str, Any]:
        routed.append("/admin/wa/qr")
        return ROUTE_BODY

    @app.post("/admin/wa/qr")
    async def not_a_read() -> dict[str, str]:
        routed.append("POST /admin/wa/qr")
        return {"posted": "yes"}

    async def answer() -> dict[str, Any] | None:
        return pushed

    app.add_middleware(PushedAnswers, answers={"/admin/wa/qr": answer})
    return app, routed


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://bridge")


async def test_a_pushed_answer_is_sent_as_the_route_would_send_it_without_the_route() -> None:
    pushed = {"status": "qr_ready", "qr": "2@pushed – ü", "expires_in": 12.5, "source": "push"}
    app, routed = app_with(pushed)
    answer = await client(app).get("/admin/wa/qr")
    assert routed == []
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == pushed
    # Byte for byte what FastAPI's JSONResponse makes of the same body.
    plain = FastAPI()
    plain.get("/x")(lambda: pushed)
    assert answer.content == (await client(plain).get("/x")).content


async def test_without_a_pushed_answer_the_route_answers() -> None:
    app, routed = app_with(None)
    answer = await client(app).get("/admin/wa/qr")
    assert routed == ["/admin/wa/qr"]
    assert answer.json() == ROUTE_BODY


async def test_only_gets_of_the_listed_paths_take_the_fast_path() -> None:
    app, routed = app_with({"qr": "2@pushed"})
    async with client(app) as bridge:
        assert (await bridge.post("/admin/wa/qr")).json() == {"posted": "yes"}
        assert (await bridge.get("/admin/wa/qr/")).status_code in (307, 404)  # not listed
        assert (await bridge.get("/nowhere")).status_code == 404
    assert routed == ["POST /admin/wa/qr"]
