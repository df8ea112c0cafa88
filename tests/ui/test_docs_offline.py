"""The bridge's API docs render in a browser that can reach nothing but the bridge: Swagger
UI and ReDoc come from the package, not from a CDN."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route

from tests.integration.test_bridge import running_bridge


def only_loopback(page: Page, refused: list[str]) -> None:
    def guard(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:
            refused.append(f"{route.request.resource_type} {route.request.url}")
            route.abort("internetdisconnected")

    page.route("**/*", guard)


def test_swagger_ui_and_redoc_render_without_the_internet(page: Page, tmp_path: Path) -> None:
    refused: list[str] = []
    only_loopback(page, refused)
    with running_bridge(tmp_path, "http://127.0.0.1:9") as bridge:
        page.goto(bridge.url + "/docs")
        page.get_by_text("/admin/wa/qr", exact=True).first.wait_for(timeout=30_000)
        assert "waqr bridge" in page.locator(".swagger-ui .info .title").inner_text()

        page.goto(bridge.url + "/redoc")
        page.get_by_text("waqr bridge").first.wait_for(timeout=30_000)

    # Nothing the pages need came from elsewhere. ReDoc's bundle still links its vendor's
    # "powered by" logo from its CDN; offline that one decorative image is just missing.
    assert [r for r in refused if r != "image https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
