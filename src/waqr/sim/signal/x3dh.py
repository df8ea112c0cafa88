"""X3DH as libsignal (session version 3) does it, for both ends of a new session.

The master secret is 32 bytes of 0xFF, then DH(IK_a, SPK_b) || DH(EK_a, IK_b) ||
DH(EK_a, SPK_b) and, when the bundle had a one-time prekey, DH(EK_a, OPK_b). HKDF "WhisperText"
turns it into a root key and a chain key. The initiator ("Alice") makes that chain a receiving
chain for the signed prekey and at once ratchets to a sending chain of her own; the responder
("Bob") sends on it with his signed prekey as ratchet key until Alice's first message ratchets.
Source: libsignal ``ratchet/RatchetingSession``, ``session/SessionBuilder`` (facts only).
"""

from __future__ import annotations

from typing import Final

from waqr.sim.signal.kdf import TEXT_INFO, ChainKey, hkdf, ratchet_root
from waqr.sim.signal.keys import AgreementKey, KeyPair, PreKey, PreKeyBundle, SignedPreKey
from waqr.sim.signal.session import PendingPreKey, ReceiverChain, SessionState

_DISCONTINUITY: Final = b"\xff" * 32


def _derive(secrets: bytes) -> tuple[bytes, ChainKey]:
    derived = hkdf(_DISCONTINUITY + secrets, salt=None, info=TEXT_INFO, length=64)
    return derived[:32], ChainKey(derived[32:], 0)


def initiate(identity: AgreementKey, registration_id: int, bundle: PreKeyBundle) -> SessionState:
    """Alice: a session with the device whose bundle this is (raises ``InvalidKey``)."""
    bundle.verify_signature()
    base_key = KeyPair.generate()
    secrets = (
        identity.dh(bundle.signed_pre_key)
        + base_key.dh(bundle.identity_key)
        + base_key.dh(bundle.signed_pre_key)
    )
    if bundle.pre_key is not None:
        secrets += base_key.dh(bundle.pre_key)
    root_key, chain_key = _derive(secrets)
    sending_ratchet = KeyPair.generate()
    next_root, sending_chain = ratchet_root(root_key, bundle.signed_pre_key, sending_ratchet)
    return SessionState(
        local_identity=identity.public,
        remote_identity=bundle.identity_key,
        root_key=next_root,
        sender_ratchet=sending_ratchet,
        sender_chain=sending_chain,
        local_registration_id=registration_id,
        remote_registration_id=bundle.registration_id,
        receiver_chains=[ReceiverChain(bundle.signed_pre_key, chain_key)],
        pending_pre_key=PendingPreKey(
            bundle.pre_key_id if bundle.pre_key is not None else None,
            bundle.signed_pre_key_id,
            base_key.public,
        ),
        alice_base_key=base_key.public,
    )


def respond(
    identity: AgreementKey,
    registration_id: int,
    *,
    signed_pre_key: SignedPreKey,
    one_time_pre_key: PreKey | None,
    their_identity: bytes,
    their_base_key: bytes,
    their_registration_id: int,
) -> SessionState:
    """Bob: the session a prekey message from ``their_identity`` asks for."""
    secrets = (
        signed_pre_key.key_pair.dh(their_identity)
        + identity.dh(their_base_key)
        + signed_pre_key.key_pair.dh(their_base_key)
    )
    if one_time_pre_key is not None:
        secrets += one_time_pre_key.key_pair.dh(their_base_key)
    root_key, chain_key = _derive(secrets)
    return SessionState(
        local_identity=identity.public,
        remote_identity=their_identity,
        root_key=root_key,
        sender_ratchet=signed_pre_key.key_pair,
        sender_chain=chain_key,
        local_registration_id=registration_id,
        remote_registration_id=their_registration_id,
        alice_base_key=their_base_key,
    )
