"""Pure presentation helpers: what a state looks like and says. No Streamlit here, so the
words are testable without a browser."""

from __future__ import annotations

import html
import json
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from waqr.redact import mask_phone

# state -> (label, colour)
BADGES: dict[str, tuple[str, str]] = {
    "starting": ("Starting", "#6b7280"),
    "connecting": ("Connecting…", "#2563eb"),
    "qr_ready": ("Scan the QR code", "#d97706"),
    "pairing_code": ("Enter the pairing code on your phone", "#d97706"),
    "connected": ("Connected", "#16a34a"),
    "disconnected": ("Disconnected, retrying", "#dc2626"),
    "logged_out": ("Logged out", "#6b7280"),
    "qr_timeout": ("QR code timed out", "#6b7280"),
    "failed": ("Needs your attention", "#b91c1c"),
}


# A connected link whose keepalive pings go unanswered: it may be dead; not a green badge.
UNSTABLE = ("Connected, but the connection is unstable", "#ca8a04")


def badge_html(state: str, *, unstable: bool = False) -> str:
    label, colour = BADGES.get(state, (state, "#6b7280"))
    if unstable and state == "connected":
        label, colour = UNSTABLE
    return (
        f'<div data-testid="waqr-badge" data-state="{html.escape(state)}" '
        f'data-unstable="{str(unstable and state == "connected").lower()}" '
        f'style="display:inline-block;padding:0.35em 0.9em;border-radius:999px;'
        f'background:{colour};color:white;font-weight:600;font-size:1.15em">'
        f"{html.escape(label)}</div>"
    )


def reason_lines(status: dict[str, Any]) -> tuple[str, str] | None:
    """(what happened, what to do) in plain words, or None when there is nothing to say."""
    reason = status.get("lastDisconnectReason")
    if not reason or status.get("status") == "connected":
        return None
    return str(reason.get("message", "")), str(reason.get("hint", ""))


def doctor_lines(status: dict[str, Any]) -> list[str]:
    """The connection doctor's verdict the bot attached to its last failure to connect: the
    layer that failed and why, then each fix. Empty when there is none or it found nothing."""
    reason = status.get("lastDisconnectReason") or {}
    diagnosis = reason.get("diagnosis") if isinstance(reason, dict) else None
    if not isinstance(diagnosis, dict) or diagnosis.get("healthy", True):
        return []
    lines = [f"Connection doctor: {diagnosis.get('layer')} failed ({diagnosis.get('cause')})"]
    if diagnosis.get("detail"):
        lines.append(str(diagnosis["detail"]))
    lines += [f"Fix: {fix}" for fix in diagnosis.get("fixes") or []]
    return lines


_OUTCOME_MARK = {"ok": "ok", "failed": "FAILED", "skipped": "not probed"}


def report_lines(report: dict[str, Any]) -> list[str]:
    """A doctor report (GET /admin/wa/diagnose) in plain lines: one per layer with its time,
    then the verdict and its fixes."""
    via = f" via {report['via']}" if report.get("via") else ""
    lines = [f"Probed {report.get('target')}{via}"]
    for step in report.get("steps") or []:
        mark = _OUTCOME_MARK.get(str(step.get("outcome")), str(step.get("outcome")))
        lines.append(
            f"{mark:<10} {step.get('layer'):<10} {float(step.get('elapsedMs') or 0):>7.0f} ms  "
            f"{step.get('detail') or ''}"
        )
    verdict = report.get("verdict")
    if not verdict:
        lines.append("Verdict: every layer answered; WhatsApp can be reached from the bot.")
        return lines
    lines.append(f"Verdict: {verdict.get('layer')} failed ({verdict.get('cause')})")
    lines += [f"Fix: {fix}" for fix in verdict.get("fixes") or []]
    return lines


def account_lines(status: dict[str, Any]) -> list[str]:
    account = status.get("account") or {}
    jid = str(account.get("jid") or "")
    number = jid.split("@", 1)[0].split(":", 1)[0]
    lines = []
    if number:
        lines.append(f"Number: {mask_phone(number)}")
    if account.get("pushName"):
        lines.append(f"Name: {account['pushName']}")
    if status.get("since"):
        lines.append(f"Connected since: {str(status['since']).replace('T', ' ')[:19]} UTC")
    return lines


def countdown(expires_in: float, fetched_at: float, now: float | None = None) -> int:
    """Seconds left of a QR whose ``expires_in`` was read at ``fetched_at``."""
    left = expires_in - ((time.time() if now is None else now) - fetched_at)
    return max(0, int(left + 0.5))


def safe_url(url: str) -> str:
    """``url`` fit to show: no user, password, query or fragment (they may carry secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def text_html(testid: str, text: str, *, strong: bool = False) -> str:
    """Outside text (a reason, a hint, a push name) as literal text: escaped, never markdown."""
    weight = "font-weight:600;" if strong else ""
    return (
        f'<div data-testid="{html.escape(testid)}" style="{weight}white-space:pre-wrap">'
        f"{html.escape(text)}</div>"
    )


# Ticks in the browser: one timer per page, however often the element is drawn again.
_COUNTDOWN_SCRIPT = """<script>
(function () {
  if (window.__waqrCountdown) { window.__waqrCountdown(); return; }
  function tick() {
    document.querySelectorAll('[data-testid="waqr-countdown"]').forEach(function (el) {
      var left = Math.max(0, Math.round(Number(el.dataset.expiresAt) - Date.now() / 1000));
      el.dataset.seconds = String(left);
      var out = el.querySelector('b');
      if (out) { out.textContent = String(left); }
    });
  }
  window.__waqrCountdown = tick;
  setInterval(tick, 250);
  tick();
})();
</script>"""


def countdown_html(expires_at: float, now: float | None = None) -> str:
    """The QR's countdown: seconds left as of ``now``, then counted down by the browser."""
    left = max(0, int(expires_at - (time.time() if now is None else now) + 0.5))
    return (
        f'<div data-testid="waqr-countdown" data-expires-at="{json.dumps(expires_at)}" '
        f'data-seconds="{left}">Expires in <b>{left}</b> s · a fresh code replaces it '
        f"automatically</div>{_COUNTDOWN_SCRIPT}"
    )


def error_html(kind: str, message: str) -> str:
    return (
        f'<div data-testid="waqr-error" data-kind="{html.escape(kind)}" '
        f'style="padding:0.8em 1em;border-radius:0.5em;background:#fee2e2;color:#7f1d1d">'
        f"{html.escape(message)}</div>"
    )


def pair_code_html(code: str) -> str:
    return (
        f'<div data-testid="waqr-pair-code" style="font-size:2.6em;font-weight:700;'
        f'letter-spacing:0.12em;font-family:monospace">{html.escape(code)}</div>'
    )
