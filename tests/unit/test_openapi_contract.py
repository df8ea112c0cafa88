"""What the OpenAPI documents promise, read without a server (the schemathesis runs in
tests/integration/test_bridge_fuzz.py hold the live services to it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from waqr.bot.app import create_app as create_bot_app
from waqr.bot.registry import SessionRegistry
from waqr.bridge.app import create_app as create_bridge_app
from waqr.phone import PHONE_PATTERN
from waqr.settings import load_settings

TOKEN = "in0GY5DuoqedeX-xR4clYcvA2hzppjZTziqet94o8qU"
OPEN = {"/health", "/healthz"}


def bot_document(tmp_path: Path) -> dict[str, Any]:
    settings = load_settings({"WAQR_DATA_DIR": str(tmp_path)})
    return create_bot_app(SessionRegistry(settings), manage_lifecycle=False).openapi()


def bridge_document() -> dict[str, Any]:
    return create_bridge_app(
        load_settings({"WA_QR_BRIDGE_TOKEN": TOKEN}), background=False
    ).openapi()


@pytest.fixture(params=["bot", "bridge"])
def document(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return bot_document(tmp_path) if request.param == "bot" else bridge_document()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_fastapis_own_validation_body_is_never_promised(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        if "422" in operation["responses"]:
            schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


def test_every_guarded_route_documents_401(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if path not in OPEN:
            assert "401" in operation["responses"], (method, path)


def test_the_bridge_documents_401_on_images_and_metrics_and_502_on_the_bot() -> None:
    paths = bridge_document()["paths"]
    for path in ("/admin/wa/qr.png", "/admin/wa/qr.svg", "/metrics"):
        assert {"401", "413", "429"} <= set(paths[path]["get"]["responses"]), path
    for path in ("/admin/wa/qr.png", "/admin/wa/status", "/wa/qr"):
        assert {"502", "503", "504"} <= set(paths[path]["get"]["responses"]), path
    assert "400" in paths["/admin/wa/pair-code"]["post"]["responses"]


def test_the_phone_rule_is_in_the_schema(document: dict[str, Any]) -> None:
    phone = document["components"]["schemas"]["PairCodeRequest"]["properties"]["phone"]
    assert phone["pattern"] == PHONE_PATTERN
