"""Session state: what each side of a double ratchet remembers between messages.

A ``SessionRecord`` holds the current state and a few archived ones (a peer may still send on an
older session after a new prekey message replaced it). The limits are libsignal's: 5 receiver
chains per state, 2000 skipped message keys per chain, 40 archived states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from waqr.sim.signal.kdf import ChainKey, MessageKeys
from waqr.sim.signal.keys import KeyPair

SESSION_VERSION: Final = 3
MAX_RECEIVER_CHAINS: Final = 5
MAX_SKIPPED_MESSAGE_KEYS: Final = 2000
MAX_ARCHIVED_STATES: Final = 40


@dataclass
class ReceiverChain:
    """The chain for one of the peer's ratchet keys, with keys of messages not yet seen."""

    their_ratchet_key: bytes
    chain_key: ChainKey
    skipped: dict[int, MessageKeys] = field(default_factory=dict)

    def remember_skipped(self, keys: MessageKeys) -> None:
        self.skipped[keys.index] = keys
        while len(self.skipped) > MAX_SKIPPED_MESSAGE_KEYS:
            del self.skipped[min(self.skipped)]


@dataclass(frozen=True)
class PendingPreKey:
    """What an initiator repeats in every message until the peer first answers."""

    pre_key_id: int | None
    signed_pre_key_id: int
    base_key: bytes


@dataclass
class SessionState:
    """One double ratchet between a local and a remote identity."""

    local_identity: bytes
    remote_identity: bytes
    root_key: bytes
    sender_ratchet: KeyPair
    sender_chain: ChainKey
    local_registration_id: int
    remote_registration_id: int = 0
    receiver_chains: list[ReceiverChain] = field(default_factory=list)
    previous_counter: int = 0
    pending_pre_key: PendingPreKey | None = None
    alice_base_key: bytes = b""
    version: int = SESSION_VERSION

    def receiver_chain(self, their_ratchet_key: bytes) -> ReceiverChain | None:
        for chain in self.receiver_chains:
            if chain.their_ratchet_key == their_ratchet_key:
                return chain
        return None

    def add_receiver_chain(self, their_ratchet_key: bytes, chain_key: ChainKey) -> ReceiverChain:
        chain = ReceiverChain(their_ratchet_key, chain_key)
        self.receiver_chains.append(chain)
        del self.receiver_chains[:-MAX_RECEIVER_CHAINS]
        return chain


@dataclass
class SessionRecord:
    """All sessions with one peer device: the current one first, then archived ones."""

    current: SessionState | None = None
    previous: list[SessionState] = field(default_factory=list)

    def has_state(self, *, version: int, alice_base_key: bytes) -> bool:
        """Whether a prekey message with this base key already built one of these sessions."""
        states = ([self.current] if self.current else []) + self.previous
        return any(s.version == version and s.alice_base_key == alice_base_key for s in states)

    def promote(self, state: SessionState) -> None:
        """Make ``state`` current, archiving the one it replaces."""
        if self.current is not None:
            self.previous.insert(0, self.current)
            del self.previous[MAX_ARCHIVED_STATES:]
        self.current = state
