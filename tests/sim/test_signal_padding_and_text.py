"""WhatsApp's plaintext padding and the waE2E.Message text inside a Signal ciphertext."""

from __future__ import annotations

import pytest

from waqr.sim.signal import InvalidMessage, decode_text, encode_text, padding
from waqr.sim.signal.padding import pad, unpad
from waqr.waproto.proto import Message


def test_padding_is_n_bytes_of_value_n_between_1_and_15() -> None:
    seen = set()
    for _ in range(200):
        padded = pad(b"payload")
        length = padded[-1]
        assert 1 <= length <= 15
        assert padded == b"payload" + bytes([length]) * length
        seen.add(length)
    assert len(seen) > 1  # drawn at random, not fixed


def test_a_zero_draw_pads_fifteen_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(padding.secrets, "randbits", lambda bits: 0)
    assert pad(b"x") == b"x" + b"\x0f" * 15


def test_unpad_removes_what_whatsmeow_adds() -> None:
    assert unpad(b"hello\x03\x03\x03") == b"hello"
    assert unpad(b"\x01") == b""


@pytest.mark.parametrize(
    "padded",
    [b"", b"hello\x00", b"hi\x05", b"hello\x02\x03\x03", b"hello\x03\x01\x03"],
    ids=["empty", "zero-length", "longer-than-message", "mixed-tail", "broken-run"],
)
def test_unpad_refuses_what_is_not_whatsapp_padding(padded: bytes) -> None:
    with pytest.raises(InvalidMessage):
        unpad(padded)


def test_a_plain_text_is_a_conversation() -> None:
    raw = unpad(encode_text("hello there"))
    assert raw[0] == 0x0A  # field 1, length-delimited: Message.conversation
    message = Message.FromString(raw)
    assert message.conversation == "hello there"
    assert not message.HasField("extendedTextMessage")
    assert decode_text(encode_text("hello there")).text == "hello there"


def test_a_reply_is_an_extended_text_naming_the_quoted_message() -> None:
    raw = unpad(
        encode_text("yes", quoted_id="3EB0ABCDEF", quoted_sender="15550001111@s.whatsapp.net")
    )
    assert raw[0] == 0x32  # field 6, length-delimited: Message.extendedTextMessage
    message = Message.FromString(raw)
    assert not message.HasField("conversation")
    assert message.extendedTextMessage.text == "yes"
    assert message.extendedTextMessage.contextInfo.stanzaID == "3EB0ABCDEF"
    decoded = decode_text(encode_text("yes", quoted_id="3EB0ABCDEF"))
    assert (decoded.text, decoded.quoted_id) == ("yes", "3EB0ABCDEF")


def test_text_survives_unicode_and_emptiness() -> None:
    for text in ["", "Grüße 👋", "x" * 5000]:
        assert decode_text(encode_text(text)).text == text


def test_a_copy_for_the_own_phone_is_unwrapped_with_its_destination() -> None:
    message = Message()
    message.deviceSentMessage.destinationJID = "15550002222@s.whatsapp.net"
    message.deviceSentMessage.message.conversation = "sent from the linked device"
    decoded = decode_text(pad(message.SerializeToString()))
    assert decoded.text == "sent from the linked device"
    assert decoded.destination == "15550002222@s.whatsapp.net"


def test_a_message_without_text_is_refused() -> None:
    message = Message()
    message.reactionMessage.text = "👍"
    with pytest.raises(InvalidMessage, match="no text"):
        decode_text(pad(message.SerializeToString()))


def test_bytes_that_are_no_protobuf_are_refused() -> None:
    with pytest.raises(InvalidMessage):
        decode_text(pad(b"\xff\xff\xff\xff"))
