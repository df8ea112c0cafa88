"""The Signal protocol as WhatsApp's libsignal speaks it, for the simulator's contacts.

Written on ``cryptography``: no maintained Python library exposes libsignal's wire format on its
own (python-axolotl and signal-protocol stopped in 2019/2021; the maintained python-omemo stack
reaches it only inside its OMEMO backend). The tests check it against python-axolotl, an
independent port of libsignal, in both directions.

Modules, bottom up:
  errors    SignalError and its tree
  keys      key pairs, identity, signed and one-time prekeys, the prekey bundle, 0x05 wire form
  kdf       HKDF "WhisperText"/"WhisperRatchet"/"WhisperMessageKeys", chain and root steps
  session   session state and record (current + archived sessions)
  x3dh      a new session for the initiator (from a bundle) and the responder (from a pkmsg)
  wire      the ``msg`` and ``pkmsg`` byte formats: version byte 0x33, protobuf, 8-byte MAC
  store     one device's identity, prekeys and sessions
  cipher    SessionCipher: encrypt, and decrypt with skipped keys and replay refusal
  padding   WhatsApp's random 1..15 byte padding of the plaintext
  message   the ``waE2E.Message`` text inside: conversation / extendedTextMessage
  prekeys   the server's view: uploaded keys, bundles handed out once, their WABinary nodes
  contact   a simulated WhatsApp user: a phone number and its Signal device
"""

from waqr.sim.signal.cipher import Ciphertext, SessionCipher
from waqr.sim.signal.errors import (
    DuplicateMessage,
    InvalidKey,
    InvalidKeyId,
    InvalidMessage,
    NoSession,
    SignalError,
)
from waqr.sim.signal.keys import IdentityKeyPair, KeyPair, PreKey, PreKeyBundle, SignedPreKey
from waqr.sim.signal.message import TextMessage, decode_text, encode_text
from waqr.sim.signal.store import ProtocolStore

__all__ = [
    "Ciphertext",
    "DuplicateMessage",
    "IdentityKeyPair",
    "InvalidKey",
    "InvalidKeyId",
    "InvalidMessage",
    "KeyPair",
    "NoSession",
    "PreKey",
    "PreKeyBundle",
    "ProtocolStore",
    "SessionCipher",
    "SignalError",
    "SignedPreKey",
    "TextMessage",
    "decode_text",
    "encode_text",
]
