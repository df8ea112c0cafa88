"""The one QR renderer (segno): PNG and SVG of a QR payload."""

from __future__ import annotations

import io

import segno


def render_png(payload: str, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    # Error correction L keeps the modules large for the ~100-character WhatsApp payload;
    # a 4-module quiet zone is what phone scanners expect.
    segno.make_qr(payload, error="l").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def render_svg(payload: str, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(payload, error="l").save(buffer, kind="svg", scale=scale, border=4)
    return buffer.getvalue()
