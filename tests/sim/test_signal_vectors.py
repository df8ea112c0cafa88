"""Published test vectors of libsignal-protocol-java (``RatchetingSessionTest``,
``ChainKeyTest``, version 3), recomputed with our key derivations."""

from __future__ import annotations

from waqr.sim.signal import x3dh
from waqr.sim.signal.kdf import ChainKey
from waqr.sim.signal.keys import KeyPair, SignedPreKey

h = bytes.fromhex


def test_chain_key_derivation_matches_libsignal() -> None:
    chain = ChainKey(h("8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f"), 0)
    keys = chain.message_keys()
    assert keys.cipher_key == h("bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217")
    assert keys.mac_key == h("c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b")
    assert keys.index == 0
    following = chain.next()
    assert following.key == h("28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d")
    assert following.index == 1 and following.message_keys().index == 1


def test_x3dh_as_responder_matches_libsignal() -> None:
    bob_identity = KeyPair.from_private(
        h("4875cc69ddf8ea0719ec947d61081135868d5fd801f02c0225e516df2156605e")
    )
    bob_signed = KeyPair.from_private(
        h("583900131fb727998b7803fe6ac22cc591f342e4e42a8c8d5d78194209b8d253")
    )
    # The vector's public halves, as a check that the private keys were read right.
    assert bob_identity.public == h(
        "f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626"
    )
    assert bob_signed.public == h(
        "ac248a8f263be6863576eb0362e28c828f0107a3379d34bab1586bf8c770cd67"
    )
    alice_identity = h("b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a")
    state = x3dh.respond(
        bob_identity,
        1,
        signed_pre_key=SignedPreKey(1, bob_signed, signature=b""),
        one_time_pre_key=None,
        their_identity=alice_identity,
        their_base_key=h("472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950"),
        their_registration_id=2,
    )
    assert state.local_identity == bob_identity.public
    assert state.remote_identity == alice_identity
    assert state.sender_chain == ChainKey(
        h("9797caca53c989bbe229a40ca7727010eb2604fc14945d77958a0aeda088b44d"), 0
    )
