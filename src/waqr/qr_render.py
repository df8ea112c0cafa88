"""The one QR renderer (segno: PNG, SVG, terminal text), and the one way a QR payload becomes
an image response or a JSON error, for the bot and the bridge alike."""

from __future__ import annotations

import io
from typing import Any, Literal

import segno
from fastapi import HTTPException
from fastapi.responses import Response

from waqr.http_errors import error_body

ImageKind = Literal["png", "svg"]
_MEDIA_TYPES: dict[ImageKind, str] = {"png": "image/png", "svg": "image/svg+xml"}
# A 4-module quiet zone is what phone scanners expect.
QUIET_ZONE = 4


def _qr(payload: str) -> segno.QRCode:
    # Error correction L keeps the modules large for the ~150-character WhatsApp payload.
    return segno.make_qr(payload, error="l")


def render(payload: str, kind: ImageKind, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    _qr(payload).save(buffer, kind=kind, scale=scale, border=QUIET_ZONE)
    return buffer.getvalue()


def render_text(payload: str) -> list[str]:
    """The QR as lines of text for a terminal, two module rows per line (segno's compact
    form: a light module is a block, a dark one a blank, so it reads right on a dark
    background; the caller supplies the colours elsewhere)."""
    buffer = io.StringIO()
    _qr(payload).terminal(out=buffer, compact=True, border=QUIET_ZONE)
    return buffer.getvalue().splitlines()


def render_png(payload: str, *, scale: int = 8) -> bytes:
    return render(payload, "png", scale=scale)


def render_svg(payload: str, *, scale: int = 8) -> bytes:
    return render(payload, "svg", scale=scale)


def qr_image_response(qr_payload: dict[str, Any], kind: ImageKind) -> Response:
    """Render ``GET /qr``'s body as an image; 409 JSON when linked, 404 JSON when there is no
    live QR."""
    code = qr_payload.get("qr")
    status = qr_payload.get("status")
    if code:
        return Response(
            render(str(code), kind),
            media_type=_MEDIA_TYPES[kind],
            headers={"Cache-Control": "no-store"},
        )
    if status == "connected":
        raise HTTPException(
            409, error_body("already_connected", "the session is linked; there is no QR")
        )
    raise HTTPException(
        404, error_body("no_qr", f"no QR code is available ({status})", status=status)
    )
