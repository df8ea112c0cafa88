"""The plaintext inside a Signal ciphertext: a padded ``waE2E.Message`` protobuf.

A plain text is ``Message.conversation`` (field 1); a text with context (a reply) is
``Message.extendedTextMessage`` (field 6) with ``text`` and ``contextInfo.stanzaID`` naming the
quoted message. What a linked device sends to its own account's other devices is wrapped in
``Message.deviceSentMessage`` (``destinationJID``, ``message``): the phone's copies to its
linked devices, and a linked device's copies to the phone.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from waqr.sim.signal.errors import InvalidMessage
from waqr.sim.signal.padding import pad, unpad
from waqr.waproto.proto import Message


@dataclass(frozen=True)
class TextMessage:
    """A text as a contact sees it: the words, and the id of the message it replies to."""

    text: str
    quoted_id: str | None = None
    quoted_sender: str | None = None
    destination: str | None = None  # set when a linked device copied it to its own phone


def encode_text(
    text: str,
    *,
    quoted_id: str | None = None,
    quoted_sender: str | None = None,
    destination: str | None = None,
) -> bytes:
    """The padded plaintext of a text message, ready for ``SessionCipher.encrypt``.

    With ``destination`` (the chat's JID) it is the copy for the sender's own other devices,
    wrapped as whatsmeow's ``marshalMessage`` does it (send.go): ``deviceSentMessage``."""
    message = Message()
    if quoted_id is None:
        message.conversation = text
    else:
        message.extendedTextMessage.text = text
        message.extendedTextMessage.contextInfo.stanzaID = quoted_id
        if quoted_sender is not None:
            message.extendedTextMessage.contextInfo.participant = quoted_sender
    if destination is not None:
        wrapper = Message()
        wrapper.deviceSentMessage.destinationJID = destination
        wrapper.deviceSentMessage.message.CopyFrom(message)
        message = wrapper
    return pad(message.SerializeToString())


def decode_text(padded: bytes) -> TextMessage:
    """The text of a decrypted plaintext; ``InvalidMessage`` if it holds no text."""
    try:
        message = Message.FromString(unpad(padded))
    except DecodeError as exc:
        raise InvalidMessage(f"plaintext is not a waE2E.Message: {exc}") from exc
    destination = None
    if message.HasField("deviceSentMessage"):
        destination = message.deviceSentMessage.destinationJID or None
        message = message.deviceSentMessage.message
    if message.HasField("conversation"):
        return TextMessage(message.conversation, destination=destination)
    if message.HasField("extendedTextMessage"):
        extended = message.extendedTextMessage
        context = extended.contextInfo
        return TextMessage(
            extended.text,
            quoted_id=context.stanzaID or None,
            quoted_sender=context.participant or None,
            destination=destination,
        )
    raise InvalidMessage("the message holds no text (neither conversation nor extendedTextMessage)")
