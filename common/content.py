"""What is inside an end-to-end envelope: the plaintext content types.

The relay never sees these; they are encrypted with the pairwise session and
carried in the ``body`` of a ``send`` frame. Like wire frames they are
MessagePack maps tagged by ``"t"``. Unknown types decode to an error the
client can skip, so a newer peer never breaks an older client.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

__all__ = ["Text", "Receipt", "Typing", "Content", "encode_content", "decode_content",
           "MAX_TEXT", "DELIVERED", "READ"]

MAX_TEXT: Final = 64 * 1024  # characters in one text message
DELIVERED: Final = "delivered"
READ: Final = "read"

MsgId = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]


class _Content(msgspec.Struct, tag_field="t", omit_defaults=True):
    pass


class Text(_Content, tag="text"):
    """A chat message. ``id`` equals the relay-level message id of its first send."""

    id: MsgId
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
    sent_at: int  # sender's clock, ms since the Unix epoch


class Receipt(_Content, tag="receipt"):
    """The recipient's client has stored (``delivered``) or shown (``read``) messages."""

    kind: Annotated[str, msgspec.Meta(pattern="^(delivered|read)$")]
    ids: Annotated[list[MsgId], msgspec.Meta(max_length=4096)]
    at: int


class Typing(_Content, tag="typing"):
    """Ephemeral: the sender is (or stopped) typing. Sent with ``eph``, never stored."""

    active: bool


Content = Text | Receipt | Typing

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Content)


def encode_content(content: Text | Receipt | Typing) -> bytes:
    return _encoder.encode(content)


def decode_content(data: bytes) -> Text | Receipt | Typing:
    """Raises msgspec.ValidationError / DecodeError for anything else."""
    return _decoder.decode(data)
