"""The Streamlit page. Run by ``waqr ui`` (or ``streamlit run`` on Community Cloud).

Nothing but the sign-in form until someone is signed in (``waqr.ui.signin``). Then the live
part, a fragment re-drawn every second from the process's one bridge subscription
(``waqr.ui.feed``): it costs the bridge nothing, and the QR's countdown ticks in the browser.
One display per state: the QR with its countdown and instruction; the pairing code with its
instruction; the account with its actions and, once linked, the Messages section: the last
incoming messages (from the same subscription) and a test send whose receipts arrive the
same way. Text from outside (a reason, a hint, a push name, a message) is shown as literal
text, never markdown.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import streamlit as st

from waqr.errors import InvalidPhoneNumber
from waqr.phone import parse_e164
from waqr.qr_render import render_png
from waqr.ui.client import BridgeClient, UiError
from waqr.ui.config import UiConfig, load_ui_config
from waqr.ui.feed import INBOX_KEEP, BridgeFeed, Snapshot
from waqr.ui.messages import furthest, inbox_html, sent_html
from waqr.ui.signin import OPEN_NOTE, expired, sign_out_button, signed_in_user
from waqr.ui.view import (
    account_lines,
    badge_html,
    countdown_html,
    doctor_lines,
    error_html,
    pair_code_html,
    reason_lines,
    report_lines,
    safe_url,
    text_html,
)

QR_STEPS = "On your phone: WhatsApp → Linked devices → Link a device, then scan this code."
CODE_STEPS = (
    "On your phone: WhatsApp → Linked devices → Link a device → Link with phone number "
    "instead, then type this code:"
)


def show_error(error: UiError) -> None:
    st.markdown(error_html(error.kind, error.message), unsafe_allow_html=True)


def show_html(markup: str) -> None:
    st.markdown(markup, unsafe_allow_html=True)


@st.cache_resource
def client_for(api_url: str, token: str) -> BridgeClient:
    return BridgeClient(api_url, token)


@st.cache_resource
def feed_for(api_url: str, token: str) -> BridgeFeed:
    """The process's one subscription to the bridge, shared by every session."""
    return BridgeFeed(client_for(api_url, token)).start()


@functools.lru_cache(maxsize=8)
def qr_png(code: str) -> bytes:
    return render_png(code, scale=6)


# How long the answer to a click stays on the page: the live panel redraws every second.
NOTICE_SECONDS = 30.0


def remember_error(error: UiError) -> None:
    st.session_state["notice"] = (error.kind, error.message, time.time())


def show_notice() -> None:
    """The last action's failure, for a while, across the live panel's redraws."""
    notice = st.session_state.get("notice")
    if notice and time.time() - notice[2] < NOTICE_SECONDS:
        show_error(UiError(notice[0], notice[1]))


def act(label: str, action: Callable[[], object]) -> None:
    """Run a bridge action; its failure, in plain words, stays on the page a while."""
    st.session_state.pop("notice", None)
    try:
        action()
    except UiError as error:
        remember_error(error)
    else:
        st.toast(label)


def confirmed(key: str, button: str, warning: str, yes: str, *, help_text: str) -> bool:
    """A button that asks first; True once the person confirmed."""
    if st.button(button, key=key, help=help_text):
        st.session_state[f"confirm_{key}"] = True
    if not st.session_state.get(f"confirm_{key}"):
        return False
    st.warning(warning)
    left, right = st.columns(2)
    if left.button(yes, key=f"{key}_yes"):
        st.session_state[f"confirm_{key}"] = False
        return True
    if right.button("Cancel", key=f"{key}_no"):
        st.session_state[f"confirm_{key}"] = False
        st.rerun(scope="fragment")
    return False


def linking_display(snapshot: Snapshot, state: str) -> None:
    if state == "qr_ready":
        st.markdown(QR_STEPS)
        if snapshot.qr and snapshot.qr_expires_at and snapshot.qr_expires_at > time.time():
            st.image(qr_png(snapshot.qr), width=300)
            st.html(countdown_html(snapshot.qr_expires_at), unsafe_allow_javascript=True)
        else:
            st.caption("Waiting for the next QR code…")
        return
    code = st.session_state.get("pair_code")
    if code:
        st.markdown(CODE_STEPS)
        show_html(pair_code_html(str(code)))
        st.session_state["pair_code_shown"] = True
        return
    pairing = (snapshot.status or {}).get("pairingCode") or {}
    st.text(
        f"A pairing code was issued for {pairing.get('phone') or 'a phone number'} in another "
        "window; type it on that phone, or ask for a new one below."
    )


def account_display(client: BridgeClient, user: str, status: dict[str, object]) -> None:
    for line in account_lines(status):
        st.text(line)  # the push name is chosen by whoever owns the account: literal text
    if confirmed(
        "logout",
        "Log out…",
        "Log out unlinks this device at WhatsApp and wipes its credentials: you will have to "
        "link again.",
        "Yes, log out",
        help_text="Unlink the device and wipe the credentials.",
    ):
        with st.spinner("Logging out…"):
            act("Logged out", lambda: client.logout(user=user))


def actions(client: BridgeClient, user: str) -> None:
    st.divider()
    if st.button("Reconnect", help="Reconnect keeping the link (credentials are kept)."):
        act("Reconnecting…", lambda: client.reconnect(user=user))
    if confirmed(
        "relink",
        "Relink…",
        "Relink wipes this device's credentials: you will have to scan again.",
        "Yes, relink",
        help_text="Wipe the credentials and link again.",
    ):
        act("Relinking…", lambda: client.reconnect(user=user, reset=True))


def pairing_form(client: BridgeClient, user: str) -> None:
    with st.form("pair", clear_on_submit=False):
        st.markdown("**Link with phone number** (instead of scanning)")
        phone = st.text_input("Phone number with country code", placeholder="+4915112345678")
        if not st.form_submit_button("Get pairing code"):
            return
    st.session_state.pop("notice", None)
    try:
        parse_e164(phone)
    except InvalidPhoneNumber as problem:
        remember_error(UiError("invalid_phone", str(problem)))
        st.rerun(scope="fragment")
    with st.spinner("Asking WhatsApp for a code…"):
        try:
            reply = client.pair_code(phone, user=user)
        except UiError as error:
            remember_error(error)
            st.rerun(scope="fragment")
    st.session_state["pair_code"] = str(reply.get("code"))
    st.session_state["pair_code_shown"] = False
    st.rerun(scope="fragment")  # the code shows in the pairing-code display, once


# The test sends of this session the page keeps showing, newest first.
SENT_SHOWN = 5


def send_form(client: BridgeClient, user: str) -> None:
    """A test message through the linked account. The bridge judges the input: what it
    refuses is shown in its own words. Sent as ``user``, so the audit log names them."""
    with st.form("send", clear_on_submit=False):
        st.markdown("**Send a test message**")
        to = st.text_input("Send to (number with country code)", placeholder="+4915112345678")
        text = st.text_area("Text", height=80)
        if not st.form_submit_button("Send"):
            return
    st.session_state.pop("send_error", None)
    with st.spinner("Sending…"):
        try:
            reply = client.send_message(to.strip(), text, user=user)
        except UiError as error:
            st.session_state["send_error"] = (error.kind, error.message)
            st.rerun(scope="fragment")
    st.session_state["sent"] = [reply, *st.session_state.get("sent", [])][:SENT_SHOWN]
    st.rerun(scope="fragment")


def sent_display(snapshot: Snapshot, client: BridgeClient) -> None:
    """Each test send with where it is now: from the pushed receipts, or, while the push
    stream is down, from a status read on request."""
    sent: list[dict[str, object]] = st.session_state.get("sent", [])
    if not sent:
        return
    for reply in sent:
        pushed = snapshot.receipts.get(str(reply.get("id")))
        show_html(sent_html(furthest(reply, pushed) if pushed else reply))
    if not snapshot.live and st.button("Check their status now", key="sent_check"):
        try:
            st.session_state["sent"] = [
                furthest(reply, client.message(str(reply.get("id")))) for reply in sent
            ]
        except UiError as error:
            st.session_state["send_error"] = (error.kind, error.message)
        st.rerun(scope="fragment")


def messages_section(snapshot: Snapshot, client: BridgeClient, user: str) -> None:
    st.subheader("Messages")
    st.caption(f"The last {INBOX_KEEP} incoming messages, newest first, as they arrive.")
    if snapshot.inbox_error is not None:
        error = snapshot.inbox_error
        show_error(UiError(error.kind, f"The last messages could not be read: {error.message}"))
    show_html(inbox_html(snapshot.inbox))
    send_form(client, user)
    refused = st.session_state.get("send_error")
    if refused:
        show_error(UiError(*refused))
    sent_display(snapshot, client)


def live_panel(config: UiConfig, feed: BridgeFeed, client: BridgeClient, user: str) -> None:
    if expired(config):
        st.rerun(scope="app")  # the whole page: back to the sign-in form
    snapshot = feed.snapshot()
    if not snapshot.started:
        st.caption("Asking the bridge…")
        return
    if not snapshot.live and snapshot.status is not None:
        st.markdown(
            '<div data-testid="waqr-polling" style="color:#92400e">Live updates from the '
            "bridge are down: checking every 5 s instead.</div>",
            unsafe_allow_html=True,
        )
    if snapshot.error is not None:
        show_error(snapshot.error)
    show_notice()
    status = snapshot.status
    if status is None:
        return
    state = str(status.get("status"))
    unstable = bool(status.get("keepaliveFailing"))
    show_html(badge_html(state, unstable=unstable))
    if unstable and state == "connected":
        st.caption(
            "WhatsApp is not answering this link's keepalive pings. waqr replaces the "
            "connection by itself if it does not recover within a minute."
        )
    said = reason_lines(status)
    if said:
        show_html(text_html("waqr-reason", said[0], strong=True))
        show_html(text_html("waqr-hint", said[1]))
        doctor = doctor_lines(status)
        if doctor:
            show_html(text_html("waqr-doctor", "\n".join(doctor)))
    if state == "connected" or (
        state != "pairing_code" and st.session_state.get("pair_code_shown")
    ):
        # A used or superseded code is not left on screen. One not shown yet waits for the
        # pushed pairing_code state, which may arrive after the bot's reply.
        st.session_state.pop("pair_code", None)
        st.session_state.pop("pair_code_shown", None)
    if state in ("qr_ready", "pairing_code"):
        linking_display(snapshot, state)
    elif state == "connected":
        account_display(client, user, status)
    elif state == "qr_timeout" and st.button("Show a new QR code", key="new_qr"):
        act("Asking for a new QR code…", lambda: client.qr(user=user))
    actions(client, user)
    if state != "connected":
        pairing_form(client, user)
        st.caption("Messages: the last incoming ones and a test send, once the account is linked.")
    else:
        messages_section(snapshot, client, user)


def diagnose_panel(client: BridgeClient, user: str) -> None:
    """The connection doctor on demand: every layer from the bot to WhatsApp, timed."""
    with st.expander("Diagnose the connection to WhatsApp"):
        st.caption(
            "The bot probes, from where it runs: configuration, DNS, TCP, the proxy, TLS, the "
            "WebSocket and WhatsApp's handshake, and names the first layer that fails."
        )
        if st.button("Run the connection doctor", key="diagnose"):
            with st.spinner("Probing… (up to a minute when something does not answer)"):
                try:
                    report = client.diagnose(user=user)
                except UiError as error:
                    show_error(error)
                    return
            show_html(text_html("waqr-diagnosis", "\n".join(report_lines(report))))


def main() -> None:
    st.set_page_config(page_title="waqr · WhatsApp link", page_icon="🔗", layout="centered")
    config: UiConfig = load_ui_config()
    user = signed_in_user(config)
    if user is None:
        return
    if config.auth == "none":
        st.title("WhatsApp link")
        st.caption(OPEN_NOTE)
    else:
        title, out = st.columns([4, 1], vertical_alignment="center")
        title.title("WhatsApp link")
        with out:
            sign_out_button(config)
    if not config.token:
        show_error(
            UiError(
                "no_token",
                "No bridge token configured: set WA_QR_BRIDGE_TOKEN in the environment "
                "(or in st.secrets on Streamlit Community Cloud).",
            )
        )
        return
    feed = feed_for(config.api_url, config.token)
    client = client_for(config.api_url, config.token)
    st.fragment(run_every=1)(live_panel)(config, feed, client, user)
    diagnose_panel(client, user)
    st.caption(f"Bridge: {safe_url(config.api_url)}")


main()
