"""Encrypt to and decrypt from one peer device: libsignal's SessionBuilder and SessionCipher.

Encryption uses the current session's sending chain and wraps the message in a ``pkmsg`` while
the peer has not answered yet. Decryption works on a copy of the session record and stores it
only when the MAC checked and the plaintext came out, so a forged, corrupt or replayed message
changes nothing. A message key is used once: the second delivery of a message is a
``DuplicateMessage``; keys of skipped messages are kept (up to 2000 per chain) so that messages
arriving out of order still decrypt.
Source: libsignal ``session/SessionCipher``, ``session/SessionBuilder`` (facts only).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Final, Literal

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from waqr.sim.signal import x3dh
from waqr.sim.signal.errors import DuplicateMessage, InvalidMessage, NoSession
from waqr.sim.signal.kdf import MessageKeys, ratchet_root
from waqr.sim.signal.keys import KeyPair, PreKeyBundle
from waqr.sim.signal.session import (
    MAX_SKIPPED_MESSAGE_KEYS,
    SESSION_VERSION,
    ReceiverChain,
    SessionRecord,
    SessionState,
)
from waqr.sim.signal.store import ProtocolStore
from waqr.sim.signal.wire import PreKeySignalMessage, SignalMessage

CiphertextKind = Literal["pkmsg", "msg"]
_AES_BLOCK_BITS: Final = 128


@dataclass(frozen=True)
class Ciphertext:
    """What goes into an ``<enc>`` node: its ``type`` attribute and its content."""

    kind: CiphertextKind
    serialized: bytes


def _aes_cbc_encrypt(keys: MessageKeys, plaintext: bytes) -> bytes:
    padder = padding.PKCS7(_AES_BLOCK_BITS).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(keys.cipher_key), modes.CBC(keys.iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def _aes_cbc_decrypt(keys: MessageKeys, ciphertext: bytes) -> bytes:
    try:
        decryptor = Cipher(algorithms.AES(keys.cipher_key), modes.CBC(keys.iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(_AES_BLOCK_BITS).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:  # not a whole number of blocks, or bad PKCS#7 padding
        raise InvalidMessage(f"ciphertext does not decrypt: {exc}") from exc


class SessionCipher:
    """Signal sessions between ``store``'s device and the device at ``address``."""

    def __init__(self, store: ProtocolStore, address: str) -> None:
        self._store = store
        self._address = address

    def start_session(self, bundle: PreKeyBundle) -> None:
        """Build a new session from the peer's prekey bundle (raises ``InvalidKey``)."""
        state = x3dh.initiate(self._store.identity, self._store.registration_id, bundle)
        record = self._store.session(self._address)
        record.promote(state)
        self._store.sessions[self._address] = record

    def encrypt(self, plaintext: bytes) -> Ciphertext:
        state = self._store.session(self._address).current
        if state is None:
            raise NoSession(f"no session with {self._address}")
        chain = state.sender_chain
        keys = chain.message_keys()
        message = SignalMessage.build(
            mac_key=keys.mac_key,
            ratchet_key=state.sender_ratchet.public,
            counter=chain.index,
            previous_counter=state.previous_counter,
            ciphertext=_aes_cbc_encrypt(keys, plaintext),
            sender_identity=state.local_identity,
            receiver_identity=state.remote_identity,
        )
        state.sender_chain = chain.next()
        pending = state.pending_pre_key
        if pending is None:
            return Ciphertext("msg", message.serialized)
        prekey_message = PreKeySignalMessage.build(
            registration_id=state.local_registration_id,
            pre_key_id=pending.pre_key_id,
            signed_pre_key_id=pending.signed_pre_key_id,
            base_key=pending.base_key,
            identity_key=state.local_identity,
            message=message,
        )
        return Ciphertext("pkmsg", prekey_message.serialized)

    def decrypt(self, ciphertext: Ciphertext) -> bytes:
        if ciphertext.kind == "pkmsg":
            return self.decrypt_prekey_message(ciphertext.serialized)
        return self.decrypt_message(ciphertext.serialized)

    def decrypt_message(self, serialized: bytes) -> bytes:
        """Decrypt a ``msg`` on an existing session."""
        if not self._store.has_session(self._address):
            raise NoSession(f"no session with {self._address}")
        record = copy.deepcopy(self._store.session(self._address))
        plaintext = _decrypt_with_record(record, SignalMessage.parse(serialized))
        self._store.sessions[self._address] = record
        return plaintext

    def decrypt_prekey_message(self, serialized: bytes) -> bytes:
        """Decrypt a ``pkmsg``, building the session it announces unless it exists already."""
        message = PreKeySignalMessage.parse(serialized)
        record = copy.deepcopy(self._store.session(self._address))
        used_pre_key_id = None
        if not record.has_state(version=SESSION_VERSION, alice_base_key=message.base_key):
            one_time = None
            if message.pre_key_id is not None:
                one_time = self._store.load_pre_key(message.pre_key_id)
                used_pre_key_id = message.pre_key_id
            record.promote(
                x3dh.respond(
                    self._store.identity,
                    self._store.registration_id,
                    signed_pre_key=self._store.load_signed_pre_key(message.signed_pre_key_id),
                    one_time_pre_key=one_time,
                    their_identity=message.identity_key,
                    their_base_key=message.base_key,
                    their_registration_id=message.registration_id,
                )
            )
        plaintext = _decrypt_with_record(record, message.message)
        self._store.sessions[self._address] = record
        if used_pre_key_id is not None:
            self._store.remove_pre_key(used_pre_key_id)
        return plaintext


def _decrypt_with_record(record: SessionRecord, message: SignalMessage) -> bytes:
    """Try the current session, then the archived ones; the one that works becomes current."""
    failures: list[str] = []
    candidates = ([record.current] if record.current else []) + list(record.previous)
    for candidate in candidates:
        state = copy.deepcopy(candidate)
        try:
            plaintext = _decrypt_with_state(state, message)
        except DuplicateMessage:
            raise
        except InvalidMessage as exc:
            failures.append(str(exc))
            continue
        if candidate is record.current:
            record.current = state
        else:
            record.previous.remove(candidate)
            record.promote(state)
        return plaintext
    raise InvalidMessage(f"no session decrypts this message ({'; '.join(failures) or 'none'})")


def _decrypt_with_state(state: SessionState, message: SignalMessage) -> bytes:
    keys = _message_keys(_receiving_chain(state, message.ratchet_key), message.counter)
    if not message.mac_matches(
        keys.mac_key, sender_identity=state.remote_identity, receiver_identity=state.local_identity
    ):
        raise InvalidMessage("bad MAC")
    plaintext = _aes_cbc_decrypt(keys, message.ciphertext)
    state.pending_pre_key = None  # the peer answered: our session is acknowledged
    return plaintext


def _receiving_chain(state: SessionState, their_ratchet: bytes) -> ReceiverChain:
    """The chain for the peer's ratchet key; a new key means a Diffie-Hellman ratchet step."""
    chain = state.receiver_chain(their_ratchet)
    if chain is not None:
        return chain
    root_key, receiving_chain = ratchet_root(state.root_key, their_ratchet, state.sender_ratchet)
    new_ratchet = KeyPair.generate()
    root_key, sending_chain = ratchet_root(root_key, their_ratchet, new_ratchet)
    state.root_key = root_key
    state.previous_counter = max(state.sender_chain.index - 1, 0)
    state.sender_ratchet = new_ratchet
    state.sender_chain = sending_chain
    return state.add_receiver_chain(their_ratchet, receiving_chain)


def _message_keys(chain: ReceiverChain, counter: int) -> MessageKeys:
    """The keys for message ``counter``, keeping those of the messages it skipped."""
    chain_key = chain.chain_key
    if chain_key.index > counter:
        skipped = chain.skipped.pop(counter, None)
        if skipped is None:
            raise DuplicateMessage(f"message key {counter} was already used")
        return skipped
    if counter - chain_key.index > MAX_SKIPPED_MESSAGE_KEYS:
        raise InvalidMessage(f"counter {counter} is over {MAX_SKIPPED_MESSAGE_KEYS} messages ahead")
    while chain_key.index < counter:
        chain.remember_skipped(chain_key.message_keys())
        chain_key = chain_key.next()
    chain.chain_key = chain_key.next()
    return chain_key.message_keys()
