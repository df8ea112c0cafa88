"""What can go wrong in the Signal layer, one class per thing a caller treats differently.

    SignalError
    ├── InvalidKey         a public key without the 0x05 prefix, or a bad prekey signature
    ├── InvalidKeyId       a pkmsg names a signed or one-time prekey we do not hold
    ├── InvalidMessage     malformed bytes, wrong version, bad MAC, or no session can decrypt it
    │   └── DuplicateMessage   a counter whose message key was already used (a replay)
    └── NoSession          nothing to encrypt with: no session with that address yet

Decryption never leaves a session half-changed: every error is raised before the new state
replaces the old one (libsignal decrypts on a copy for the same reason).
"""

from __future__ import annotations


class SignalError(Exception):
    """Base class of the Signal layer's errors."""


class InvalidKey(SignalError):
    """A key or a signature over a key that does not check out."""


class InvalidKeyId(SignalError):
    """A prekey message refers to a prekey this store does not (or no longer) hold."""


class InvalidMessage(SignalError):
    """A ciphertext that cannot be decrypted by any session."""


class DuplicateMessage(InvalidMessage):
    """The message key for this counter was already used: the message was seen before."""


class NoSession(SignalError):
    """There is no session with that address to encrypt with."""
