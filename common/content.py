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
           "SenderKeyDist", "GroupKey", "AudienceKey", "ProfileKey", "StoryKey", "StoryViewed",
           "Poll", "Vote", "PollClose", "PollTally", "Sticker", "Gift", "Sync", "State", "Content",
           "encode_content",
           "decode_content",
           "MAX_TEXT", "DELIVERED", "READ", "MAX_TIMER", "MAX_POLL_OPTIONS", "MAX_QUESTION",
           "MAX_OPTION", "MAX_PACK_STICKERS"]

MAX_TEXT: Final = 64 * 1024  # characters in one text message
DELIVERED: Final = "delivered"
READ: Final = "read"

MAX_TIMER: Final = 4 * 7 * 24 * 3600  # disappearing timer: at most four weeks, in seconds

MAX_POLL_OPTIONS: Final = 12  # options in one poll
MAX_QUESTION: Final = 300  # characters in a poll's question
MAX_OPTION: Final = 100  # characters in one poll option
MAX_PACK_STICKERS: Final = 120  # stickers in one pack

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


class GroupKey(_Content, tag="group_key"):
    """1:1 only: a group's metadata key (common.crypto.group_meta), from an admin of the
    group to a member: it opens the group's sealed name, topic and picture."""

    group: GroupId
    key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class AudienceKey(_Content, tag="audience_key"):
    """1:1 only: the sender's current audience key, which opens their followers-only posts
    (common.social.SealedPost)."""

    key_id: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class ProfileKey(_Content, tag="profile_key"):
    """1:1 only: the sender's profile key, from which the recipient derives the access key
    that lets it send the sender sealed messages (common.crypto.sealed, docs/protocol.md
    §5.10). Sent again after each rotation (the sender blocked someone)."""

    key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class StoryKey(_Content, tag="story_key"):
    """1:1 only: the sender's current close-friends key, which opens their close-friends
    stories (common.stories.SealedStory with audience ``close_friends``)."""

    key_id: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    key: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class StoryViewed(_Content, tag="story_view"):
    """1:1 only: a view receipt — the sender opened the recipient's story ``story``."""

    story: MsgId
    at: int  # the viewer's clock, ms


OptionIndex = Annotated[int, msgspec.Meta(ge=0, lt=MAX_POLL_OPTIONS)]
Hash32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class Poll(_Content, tag="poll"):
    """A poll, shown as a message (``id`` is its message id). Only its creator closes it."""

    id: MsgId
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_QUESTION)]
    options: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_OPTION)]],
                       msgspec.Meta(min_length=2, max_length=MAX_POLL_OPTIONS)]
    sent_at: int
    multiple: bool = False  # several options may be chosen
    anonymous: bool = False  # votes go only to the creator, who publishes PollTally counts


class Vote(_Content, tag="vote"):
    """One member's choices in a poll (0-based option indexes; empty takes the vote back).
    A later vote (by ``at``) replaces the voter's earlier one.

    Named polls: sent to the conversation, like a reaction. Anonymous polls: sent 1:1 to
    the poll's creator only, with ``group`` naming the group the poll is in (None in 1:1)."""

    poll: MsgId
    choices: Annotated[list[OptionIndex], msgspec.Meta(max_length=MAX_POLL_OPTIONS)]
    at: int  # voter's clock, ms
    group: GroupId | None = None


class PollClose(_Content, tag="poll_close"):
    """The creator closes the poll: votes applied after this are ignored."""

    poll: MsgId


class PollTally(_Content, tag="poll_tally"):
    """Anonymous polls: the creator's count of the votes it received, per option; a later
    tally (by ``at``) replaces an earlier one. Accepted only from the poll's creator."""

    poll: MsgId
    counts: Annotated[list[Annotated[int, msgspec.Meta(ge=0)]],
                      msgspec.Meta(max_length=MAX_POLL_OPTIONS)]
    voters: Annotated[int, msgspec.Meta(ge=0)]  # members who voted
    at: int  # creator's clock, ms


class Sticker(_Content, tag="sticker"):
    """A sticker: entry ``index`` of the pack whose sealed manifest is blob ``pack``, opened
    with ``key`` (the pack key, as in its tenchat://sticker link)."""

    id: MsgId
    pack: Hash32  # blob id of the pack's sealed manifest (common.stickers)
    key: Key32  # the pack key
    index: Annotated[int, msgspec.Meta(ge=0, lt=MAX_PACK_STICKERS)]
    sent_at: int
    name: Annotated[str, msgspec.Meta(max_length=64)] = ""  # the sticker's name, as a hint
    reply_to: MsgId | None = None
    expires_in: Annotated[int, msgspec.Meta(ge=0, le=MAX_TIMER)] = 0


class Gift(_Content, tag="gift"):
    """1:1 only: the sender sent the recipient a token gift in transaction ``tx_hash`` on
    chain ``chain_id``. Nothing else: amounts, token and addresses are read from the chain
    by each client (client.wallet), never taken from this message."""

    id: MsgId
    chain_id: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    tx_hash: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    sent_at: int


class State(_Content, tag="state"):
    """1:1, between devices of one account only: a setting changed on another device of
    ours — of a contact (``blocked``, ``verified``, ``added``), of a conversation
    (``muted``, ``pinned``; ``target`` a user or group id), a privacy setting (no
    ``target``), a follower approved or removed (``follower``, ``at`` when), a close
    friend (``close_friend``) or a sticker pack installed (``sticker_pack``: ``target``
    the manifest's blob id, ``data`` the pack key) — docs/protocol.md §11."""

    key: Annotated[str, msgspec.Meta(max_length=32)]
    value: bool
    target: Annotated[bytes, msgspec.Meta(max_length=32)] = b""
    at: Annotated[int, msgspec.Meta(ge=0)] = 0  # when, ms, the sender's clock (0: unsaid)
    data: Annotated[bytes, msgspec.Meta(max_length=64)] = b""  # a value beyond the flag


class Sync(_Content, tag="sync"):
    """1:1, between devices of one account only: what this account sent into
    conversation ``conv`` (a user id, 32 bytes) from another of its devices — ``body`` is
    that content, encoded (docs/protocol.md §11, "Devices"). A receiver accepts it only
    from a device its own account's signed list names."""

    conv: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    body: bytes


Content = (
    Text | Attachment | Receipt | Typing | Reaction | Edit | Delete | Pin | Timer | SenderKeyDist
    | GroupKey | AudienceKey | ProfileKey | StoryKey | StoryViewed | Poll | Vote | PollClose
    | PollTally | Sticker | Gift | Sync | State
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Content)


def encode_content(content: Content) -> bytes:
    return _encoder.encode(content)


def decode_content(data: bytes) -> Content:
    """Raises msgspec.ValidationError / DecodeError for anything else."""
    try:
        return _decoder.decode(data)
    except UnicodeDecodeError as exc:  # msgspec lets a non-UTF-8 str through as this
        raise msgspec.DecodeError(f"invalid UTF-8: {exc}") from None
