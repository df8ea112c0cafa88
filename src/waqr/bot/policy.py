"""The numbers a session lives by: backoff, QR demand, and the deadline of every waiting state.

Each deadline is derived from what the state waits for (README, "Session states"):

    connecting (no event yet)    dial_timeout      then connect_timeout, fresh engine
    connecting (after a link)    login_timeout     then login_stalled, fresh engine
                                 (redial_grace once the socket is seen closing)
    qr_ready / pairing_code      last QR's expiry + qr_grace
                                                   then qr_batch_exhausted: a new batch if
                                                   someone waits, else qr_timeout (resting)
    disconnected, engine alive   reconnect_grace   then the engine is replaced
    disconnected, no engine      the backoff delay then a fresh engine
    connected, pings failing     keepalive_grace   then link_unresponsive, fresh engine
    any state, 440 replaced      the backoff delay then a fresh engine; the replaced_limit-th
                                                   within replaced_window: failed
    any state, engine alive      ping_interval     an engine ping; no answer within
                                                   command_bound -> engine_unresponsive
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    qr_demand_window: float = 180.0
    qr_max_cycles: int = 3
    # A fresh engine that has reported nothing by then is replaced. The engine supervisor's
    # own start watchdog (WAQR_ENGINE_START_TIMEOUT) normally fires first; this is the
    # session's backstop for an engine that has no watchdog of its own.
    dial_timeout: float = 40.0
    # After the phone accepted the link, whatsmeow restarts the stream (515) and logs in,
    # normally within a second or two. A close that races the 515 leaves it silent forever.
    login_timeout: float = 30.0
    # ...and once the socket is seen closing in that phase, this long for whatsmeow's redial.
    redial_grace: float = 5.0
    # whatsmeow hands out the next code the moment the previous one expires (qrchan.go);
    # no new code within this margin means the batch has run out.
    qr_grace: float = 5.0
    # How long a connected link may fail its keepalive pings to WhatsApp (from the first miss)
    # before it is replaced: 45 s lets one missed ping (20-30 s apart) pass and not two.
    # whatsmeow's own limit is 3 min, after which it disconnects without a word.
    keepalive_grace: float = 45.0
    # WhatsApp's 440 "replaced" (another client logged in with the same credentials): one is
    # reconnected with the backoff (a restart overlap); replaced_limit of them within
    # replaced_window seconds is two clients on one device, and the session stops in failed.
    # Wrappers that always reconnect loop about once a second (wa-server-behaviour.md).
    replaced_limit: int = 3
    replaced_window: float = 600.0
    # How long whatsmeow may try to get a lost connection back by itself before the
    # session replaces the engine.
    reconnect_grace: float = 30.0
    # How long a logout or relink waits for a reconnecting engine to unlink the device with
    # (else the credentials are wiped locally and the device stays in Linked devices).
    unlink_wait: float = 15.0
    # How long POST /pair-code waits for an engine to be ready to pair.
    pair_wait: float = 45.0
    # Idle engines are pinged this often; a ping or command that takes longer than
    # command_bound is a hung engine.
    ping_interval: float = 30.0
    command_bound: float = 35.0
    # How long a stopping engine may take before the session forgets it (its stop() is
    # itself bounded; this only guards against an engine that breaks that promise).
    stop_bound: float = 15.0
    # /health turns 503 once a deadline has been overrun by this much: the actor is stuck.
    health_margin: float = 60.0
    # Whether the engine dials through WA_PROXY (changes how dial errors read).
    via_proxy: bool = False
