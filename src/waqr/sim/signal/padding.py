"""WhatsApp's padding of the message protobuf before Signal encryption (``<enc v="2">``).

n random-valued bytes, each equal to n, with n drawn from 1..15 (a random byte's low nibble;
0 becomes 15). Unpadding checks that the last n bytes all equal n.
Source: whatsmeow ``message.go`` ``padMessage``/``unpadMessage`` (facts only).
"""

from __future__ import annotations

import secrets

from waqr.sim.signal.errors import InvalidMessage


def pad(plaintext: bytes) -> bytes:
    length = secrets.randbits(4) or 0x0F
    return plaintext + bytes([length]) * length


def unpad(padded: bytes) -> bytes:
    if not padded:
        raise InvalidMessage("padded plaintext is empty")
    length = padded[-1]
    if length == 0 or length > len(padded) or padded[-length:] != bytes([length]) * length:
        raise InvalidMessage("plaintext does not end in WhatsApp's padding")
    return padded[:-length]
