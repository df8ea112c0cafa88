"""The Streamlit page. Run by ``waqr ui`` (or ``streamlit run`` on Community Cloud).

The live part is a fragment that re-runs every second: state badge, reason and next step,
the QR with its countdown (a rotation shows within a second), the account when linked. The
controls around it re-run the page only when used.
"""

from __future__ import annotations

import time

import streamlit as st

from waqr.errors import InvalidPhoneNumber
from waqr.phone import parse_e164
from waqr.qr_render import render_png
from waqr.ui.client import BridgeClient, UiError
from waqr.ui.config import load_ui_config
from waqr.ui.view import (
    account_lines,
    badge_html,
    countdown,
    error_html,
    pair_code_html,
    reason_lines,
)

LINKING = ("qr_ready", "pairing_code")


def show_error(error: UiError) -> None:
    st.markdown(error_html(error.kind, error.message), unsafe_allow_html=True)


@st.cache_resource
def client_for(api_url: str, token: str) -> BridgeClient:
    return BridgeClient(api_url, token)


def live_panel(client: BridgeClient) -> None:
    try:
        status = client.status()
    except UiError as error:
        show_error(error)
        return
    state = str(status.get("status"))
    st.session_state["state"] = state
    unstable = bool(status.get("keepaliveFailing"))
    st.markdown(badge_html(state, unstable=unstable), unsafe_allow_html=True)
    if unstable and state == "connected":
        st.caption(
            "WhatsApp is not answering this link's keepalive pings. waqr replaces the "
            "connection by itself if it does not recover within a minute."
        )
    said = reason_lines(status)
    if said:
        what, todo = said
        st.markdown(f"**{what}**  \n{todo}")
    if state in LINKING:
        try:
            qr = client.qr()
        except UiError as error:
            show_error(error)
            return
        if qr.get("qr"):
            fetched = time.time()
            left = countdown(float(qr.get("expires_in") or 0), fetched)
            st.image(render_png(str(qr["qr"]), scale=6), width=300)
            st.markdown(
                f'<div data-testid="waqr-countdown" data-seconds="{left}">'
                f"Expires in <b>{left}</b> s · a fresh code replaces it automatically</div>",
                unsafe_allow_html=True,
            )
        code = st.session_state.get("pair_code")
        if state == "pairing_code" and code:
            st.markdown("On your phone: **Linked devices → Link with phone number**, then type:")
            st.markdown(pair_code_html(code), unsafe_allow_html=True)
    elif state == "connected":
        st.session_state.pop("pair_code", None)
        for line in account_lines(status):
            st.markdown(line)
        if st.button("Log out", key="logout"):
            with st.spinner("Logging out…"):
                try:
                    client.logout()
                except UiError as error:
                    show_error(error)
    elif state == "qr_timeout" and st.button("Show a new QR code", key="new_qr"):
        try:
            client.qr()
        except UiError as error:
            show_error(error)


def controls(client: BridgeClient) -> None:
    st.divider()
    left, right = st.columns(2)
    if left.button("Reconnect", help="Reconnect keeping the link (credentials are kept)."):
        try:
            client.reconnect()
            st.toast("Reconnecting…")
        except UiError as error:
            show_error(error)
    if right.button("Relink…", help="Wipe the credentials and link again."):
        st.session_state["confirm_relink"] = True
    if st.session_state.get("confirm_relink"):
        st.warning("Relink wipes this device's credentials: you will have to scan again.")
        yes, no = st.columns(2)
        if yes.button("Yes, relink", key="relink_yes"):
            st.session_state["confirm_relink"] = False
            try:
                client.reconnect(reset=True)
                st.toast("Relinking…")
            except UiError as error:
                show_error(error)
        if no.button("Cancel", key="relink_no"):
            st.session_state["confirm_relink"] = False
            st.rerun()

    with st.form("pair", clear_on_submit=False):
        st.markdown("**Link with phone number** (instead of scanning)")
        phone = st.text_input("Phone number with country code", placeholder="+4915112345678")
        if st.form_submit_button("Get pairing code"):
            try:
                parse_e164(phone)
            except InvalidPhoneNumber as problem:
                show_error(UiError("invalid_phone", str(problem)))
            else:
                with st.spinner("Asking WhatsApp for a code…"):
                    try:
                        reply = client.pair_code(phone)
                    except UiError as error:
                        show_error(error)
                    else:
                        st.session_state["pair_code"] = reply.get("code")
                        st.markdown(pair_code_html(str(reply.get("code"))), unsafe_allow_html=True)


def main() -> None:
    st.set_page_config(page_title="waqr · WhatsApp link", page_icon="🔗", layout="centered")
    st.title("WhatsApp link")
    config = load_ui_config()
    if not config.token:
        show_error(
            UiError(
                "no_token",
                "No bridge token configured: set WA_QR_BRIDGE_TOKEN in the environment "
                "(or in st.secrets on Streamlit Community Cloud).",
            )
        )
        return
    client = client_for(config.api_url, config.token)
    st.fragment(run_every=1)(live_panel)(client)
    controls(client)
    st.caption(f"Bridge: {config.api_url}")


main()
