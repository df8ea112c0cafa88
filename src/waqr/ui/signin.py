"""Who may use the page (``WAQR_UI_AUTH``): ``none`` (loopback only, the page says it is
open), ``password`` (an argon2 hash in ``WAQR_UI_PASSWORD_HASH``; attempts throttled per
browser address; sessions expire after ``WAQR_UI_SESSION_TTL`` s) or ``oidc`` (Streamlit's own
``st.login`` against the operator's identity provider, then ``WAQR_UI_ALLOWED_EMAILS``).

:func:`signed_in_user` draws the sign-in form and returns None until someone is signed in;
the page draws nothing else and calls nothing of the bridge until it returns a name."""

from __future__ import annotations

import threading
import time
from collections import deque

import streamlit as st
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from waqr.ui.config import UiConfig, is_loopback
from waqr.ui.view import error_html

MAX_FAILURES = 5  # wrong passwords per browser address per window
WINDOW_SECONDS = 60.0


def email_allowed(email: str | None, allowed: tuple[str, ...]) -> bool:
    """An exact address or an ``@domain`` entry of the allow-list; an empty list admits none."""
    if not email or "@" not in email:
        return False
    email = email.strip().lower()
    domain = "@" + email.rsplit("@", 1)[1]
    return any(entry in (email, domain) for entry in allowed)


class PasswordThrottle:
    """Wrong passwords per client over a sliding window; past the limit, attempts are refused
    unchecked until the oldest failure leaves the window. Shared by the process's sessions."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def wait(self, client: str, now: float | None = None) -> int:
        """Seconds ``client`` must wait before its next attempt (0: it may try now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._failures.get(client)
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if not failures:
                self._failures.pop(client, None)
                return 0
            if len(failures) < self.max_failures:
                return 0
            return max(1, int(failures[0] + self.window - now) + 1)

    def fail(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._failures.setdefault(client, deque(maxlen=self.max_failures)).append(now)
            if len(self._failures) > 10_000:  # spoofed addresses cannot grow it without end
                self._failures.pop(next(iter(self._failures)))


@st.cache_resource
def _throttle() -> PasswordThrottle:
    return PasswordThrottle()


@st.cache_resource
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def password_matches(password: str, password_hash: str) -> bool:
    """argon2's own verify: the comparison inside it is constant-time."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _client_address() -> str:
    # Streamlit gives no address for a browser on the same machine (loopback).
    return str(st.context.ip_address or "local")


def _refuse(kind: str, message: str) -> None:
    st.markdown(error_html(kind, message), unsafe_allow_html=True)


def expired(config: UiConfig) -> bool:
    """A password sign-in past ``WAQR_UI_SESSION_TTL`` (the live panel checks each second)."""
    if config.auth != "password":
        return False
    signed_in_at = st.session_state.get("signed_in_at")
    return signed_in_at is None or time.time() - signed_in_at >= config.session_ttl


def _password_user(config: UiConfig) -> str | None:
    signed_in_at = st.session_state.get("signed_in_at")
    if signed_in_at is not None and time.time() - signed_in_at < config.session_ttl:
        return str(st.session_state["user"])
    if signed_in_at is not None:
        _forget_password_user()
        st.info("Your session expired; sign in again.")
    if not config.password_hash:
        _refuse("no_password", "WAQR_UI_AUTH=password needs WAQR_UI_PASSWORD_HASH.")
        return None
    st.subheader("Sign in")
    with st.form("signin"):
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return None
    client = _client_address()
    wait = _throttle().wait(client)
    if wait:
        _refuse("throttled", f"Too many wrong passwords: try again in {wait} s.")
        return None
    if not password_matches(password, config.password_hash):
        _throttle().fail(client)
        _refuse("wrong_password", "Wrong password.")
        return None
    st.session_state["signed_in_at"] = time.time()
    st.session_state["user"] = f"password@{client}"
    st.rerun()
    return None  # not reached: st.rerun raises


def _oidc_user(config: UiConfig) -> str | None:
    if not st.user.is_logged_in:
        st.subheader("Sign in")
        st.button("Sign in with your identity provider", on_click=st.login)
        return None
    email = st.user.get("email")
    if not email_allowed(str(email) if email else None, config.allowed_emails):
        _refuse(
            "not_allowed",
            f"{email or 'This account'} may not use this page (WAQR_UI_ALLOWED_EMAILS).",
        )
        st.button("Sign out", on_click=st.logout)
        return None
    return str(email)


def signed_in_user(config: UiConfig) -> str | None:
    """The signed-in user's name for the audit log, or None (the sign-in form is drawn)."""
    if config.auth == "none":
        address = str(st.get_option("server.address") or "127.0.0.1")
        if not is_loopback(address):
            _refuse(
                "open_refused",
                "This page has no sign-in (WAQR_UI_AUTH=none) and listens on a public "
                "address: set WAQR_UI_AUTH to password or oidc.",
            )
            return None
        return "local"
    if config.auth == "password":
        return _password_user(config)
    if config.auth == "oidc":
        return _oidc_user(config)
    _refuse("bad_auth", "WAQR_UI_AUTH must be none, password or oidc.")
    return None


def _forget_password_user() -> None:
    st.session_state.pop("signed_in_at", None)
    st.session_state.pop("user", None)


OPEN_NOTE = (
    "Open page (WAQR_UI_AUTH=none): anyone who can reach this address can link or unlink. "
    "Fine on loopback for local use only."
)


def sign_out_button(config: UiConfig) -> None:
    if config.auth == "password":
        st.button("Sign out", key="sign_out", on_click=_forget_password_user)
    elif config.auth == "oidc":
        st.button("Sign out", key="sign_out", on_click=st.logout)
