"""What is inside an end-to-end envelope: the plaintext content types.

The relay never sees these; they are encrypted with the pairwise session and
carried in the ``body`` of a ``send`` frame. Like wire frames they are
MessagePack maps tagged by ``"t"``. Unknown types decode to an error the
client can skip, so a newer peer never breaks an older client.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from .crypto.media import MediaRef

__all__ = ["Text", "Attachment", "Receipt", "Typing", "Reaction", "Edit", "Delete", "Pin", "Timer",
           "SenderKeyDist", "AudienceKey", "Gift", "Content", "encode_content", "decode_content",
           "MAX_TEXT", "DELIVERED", "READ", "MAX_TIMER"]

MAX_TEXT: Final = 64 * 1024  # characters in one text message
DELIVERED: Final = "delivered"
READ: Final = "read"

MAX_TIMER: Final = 4 * 7 * 24 * 3600  # disappearing timer: at most four weeks, in seconds

MsgId = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
GroupId = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Emoji = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


class _Content(msgspec.Struct, tag_field="t", omit_defaults=True):
    pass


class Text(_Content, tag="text"):
    """A chat message. ``id`` equals the relay-level message id of its first send."""

    id: MsgId
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
    sent_at: int  # sender's clock, ms since the Unix epoch
    reply_to: MsgId | None = None  # the message this one answers (quotes)
    expires_in: Annotated[int, msgspec.Meta(ge=0, le=MAX_TIMER)] = 0  # s after receipt; 0 never


class Attachment(_Content, tag="attachment"):
    """A file: sealed and uploaded as a blob (common.crypto.media); ``ref`` opens it."""

    id: MsgId
    ref: MediaRef  # the blob id and its key: the key exists only inside E2E content
    sent_at: int
    caption: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] = ""
    reply_to: MsgId | None = None
    expires_in: Annotated[int, msgspec.Meta(ge=0, le=MAX_TIMER)] = 0


class Receipt(_Content, tag="receipt"):
    """The recipient's client has stored (``delivered``) or shown (``read``) messages."""

    kind: Annotated[str, msgspec.Meta(pattern="^(delivered|read)$")]
    ids: Annotated[list[MsgId], msgspec.Meta(max_length=4096)]
    at: int
    group: GroupId | None = None  # receipts for group messages go 1:1 to their author


class Typing(_Content, tag="typing"):
    """Ephemeral: the sender is (or stopped) typing. Sent with ``eph``, never stored."""

    active: bool


class Reaction(_Content, tag="reaction"):
    """Add (or with ``remove`` take back) an emoji reaction to a message."""

    target: MsgId
    emoji: Emoji
    remove: bool = False


class Edit(_Content, tag="edit"):
    """Replace the text of one's own earlier message."""

    target: MsgId
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class Delete(_Content, tag="delete"):
    """Delete one's own message for everyone."""

    target: MsgId


class Pin(_Content, tag="pin"):
    """Pin or unpin a message in the conversation (in groups: admins only)."""

    target: MsgId
    pinned: bool = True


class Timer(_Content, tag="timer"):
    """Set the conversation's disappearing-message timer (seconds; 0 turns it off)."""

    seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_TIMER)]


class SenderKeyDist(_Content, tag="sender_key"):
    """1:1 only: the sender's current sender key for a group (common.crypto.sender_keys)."""

    group: GroupId
    dist: bytes  # SenderKeyDistribution, MessagePack


class AudienceKey(_Content, tag="audience_key"):
    """1:1 only: the sender's current audience key, which opens their followers-only posts
    (common.social.SealedPost)."""

    key_id: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class Gift(_Content, tag="gift"):
    """1:1 only: the sender sent the recipient a token gift in transaction ``tx_hash`` on
    chain ``chain_id``. Nothing else: amounts, token and addresses are read from the chain
    by each client (client.wallet), never taken from this message."""

    id: MsgId
    chain_id: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    tx_hash: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    sent_at: int


Content = (
    Text | Attachment | Receipt | Typing | Reaction | Edit | Delete | Pin | Timer | SenderKeyDist
    | AudienceKey | Gift
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Content)


def encode_content(content: Content) -> bytes:
    return _encoder.encode(content)


def decode_content(data: bytes) -> Content:
    """Raises msgspec.ValidationError / DecodeError for anything else."""
    return _decoder.decode(data)
