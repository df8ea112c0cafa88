"""Server side of the Noise_XX handshake, driven by a client that checks what whatsmeow checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.sim.fake_wa_client import ChainRejected, NoiseInitiator, verify_chain
from waqr.sim.binary import Node
from waqr.sim.certs import ServerIdentity, build_cert_chain, load_or_create_root
from waqr.waproto import proto
from waqr.waproto.noise import INTRO_HEADER, PROTOCOL_NAME, NoiseError, ServerHandshake, hkdf_pair
from waqr.waproto.xeddsa import SigningKey


def _payload() -> object:
    payload = proto.ClientPayload()
    payload.username = 15550001111
    payload.device = 3
    return payload


def test_protocol_name_is_exactly_32_bytes_so_it_is_used_unhashed() -> None:
    assert len(PROTOCOL_NAME) == 32 and bytes.fromhex("57410603") == INTRO_HEADER


def test_hkdf_pair_matches_rfc5869_shape() -> None:
    first, second = hkdf_pair(b"salt", b"ikm")
    assert len(first) == len(second) == 32 and first != second


def test_server_hello_carries_a_chain_the_client_accepts(tmp_path: Path) -> None:
    identity = ServerIdentity.create(load_or_create_root(tmp_path))
    server = ServerHandshake(identity.static_key, identity.cert_chain, INTRO_HEADER)
    client = NoiseInitiator(identity.root_public_key)
    finish = client.client_finish(server.respond(client.client_hello()), _payload())
    result = server.finish(finish)
    assert result.client_noise_key == client.noise_public
    parsed = proto.ClientPayload()
    parsed.ParseFromString(result.client_payload)
    assert parsed.username == 15550001111 and parsed.device == 3
    # Transport keys agree in both directions, frame after frame.
    for i in range(3):
        node = Node("iq", {"id": str(i)})
        assert client.open(result.send.encrypt(b"\x00" + _encoded(node))) == node
        plaintext = result.receive.decrypt(client.seal(node))
        assert plaintext[0] == 0


def _encoded(node: Node) -> bytes:
    from waqr.sim.binary import encode_node

    return encode_node(node)


def test_client_with_another_root_rejects_the_chain(tmp_path: Path) -> None:
    identity = ServerIdentity.create(load_or_create_root(tmp_path))
    server = ServerHandshake(identity.static_key, identity.cert_chain, INTRO_HEADER)
    client = NoiseInitiator(SigningKey.generate().public)
    with pytest.raises(ChainRejected):
        client.client_finish(server.respond(client.client_hello()), _payload())


def test_leaf_must_name_the_server_static_key() -> None:
    root = SigningKey.generate()
    chain = build_cert_chain(root, SigningKey.generate(), b"\x01" * 32, now=1_800_000_000)
    with pytest.raises(ChainRejected):
        verify_chain(
            chain, root.public, X25519PrivateKey.generate().public_key().public_bytes_raw()
        )


def test_root_key_is_reused_from_the_state_dir(tmp_path: Path) -> None:
    first = load_or_create_root(tmp_path)
    assert load_or_create_root(tmp_path).public == first.public
    assert (tmp_path / "noise-root.key").stat().st_mode & 0o077 == 0


def test_wrong_prologue_fails_authentication(tmp_path: Path) -> None:
    identity = ServerIdentity.create(load_or_create_root(tmp_path))
    server = ServerHandshake(identity.static_key, identity.cert_chain, b"WA\x06\x02")
    client = NoiseInitiator(identity.root_public_key)
    with pytest.raises(NoiseError):
        client.client_finish(server.respond(client.client_hello()), _payload())


def test_garbage_first_frame_is_a_noise_error(tmp_path: Path) -> None:
    identity = ServerIdentity.create(load_or_create_root(tmp_path))
    server = ServerHandshake(identity.static_key, identity.cert_chain, INTRO_HEADER)
    with pytest.raises(NoiseError):
        server.respond(b"\xff\xff\xff")
