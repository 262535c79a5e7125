"""Wire frames: typed msgspec Structs, MessagePack-encoded, one per binary WebSocket message.

Every frame is a MessagePack map whose ``"t"`` names its type. Requests from a
client carry a client-chosen ``id`` (an unsigned integer); the relay's answer
carries the same ``id``. Pushes from the relay carry no ``id``. See
``docs/protocol.md`` for the sequences.

This module is sans-I/O: :func:`encode` and :func:`decode_request` /
:func:`decode_reply` turn bytes into frames and back and raise
:class:`~tenchat.common.errors.ProtocolError` with a wire code.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

from .errors import ErrorCode, ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "Hello", "Welcome", "Auth", "Authed", "Register", "Lookup", "Whois", "HandleInfo",
    "SignedPrekey", "OneTimePrekey", "PublishPrekeys", "PrekeyStatus", "FetchBundle", "Bundle",
    "Send", "Stored", "Ack", "Ok", "Subscribe", "Fetch", "Messages", "Deliver", "Synced",
    "PrekeysLow", "Watch", "PresenceState", "Presence", "Error", "Request", "Reply",
    "GroupChangeReq", "GroupSend", "GroupStored", "GroupInfo", "GroupHistory", "GroupList",
    "GroupSummary", "Groups", "GroupDeliver", "GroupAck", "Privacy", "Block",
    "SealedAccess", "SealedSend",
    "BlobBegin", "BlobChunk", "BlobStatus", "BlobGet", "BlobData",
    "ProfileSet", "ProfileGet", "ProfileInfo", "FollowReq", "FollowState", "Unfollow",
    "ApproveReq", "RemoveFollower", "FollowList", "FollowEntry", "FollowItems",
    "PostPut", "Feed", "FeedItems", "CommentPut", "ReactPut", "PostExtrasReq", "PostExtra",
    "PostExtras", "CommentsReq", "CommentItems", "Moderate", "MODERATE_ACTIONS",
    "PostExtras", "CommentsReq", "CommentItems", "StoryPut", "StoriesReq", "StoryItems", "StoryNew",
    "WalletLinkPut", "WalletUnlink", "WalletsGet", "WalletLinks", "WalletAuth",
    "DevicesPut", "DevicesGet", "DevicesInfo", "LinkPut", "LinkTake", "LinkBlob",
    "encode", "decode_request", "decode_reply", "peek_id",
]

PROTOCOL_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = (1,)

Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
MsgId = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
GroupId = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
ReqId = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
# Stored as SQLite INTEGER (signed 64-bit): anything larger is malformed at the edge.
UINT_MAX = 2**63 - 1
Seq = Annotated[int, msgspec.Meta(ge=0, le=UINT_MAX)]
ShortStr = Annotated[str, msgspec.Meta(max_length=256)]
BlobHash = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
BlobSize = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class _Frame(msgspec.Struct, tag_field="t", forbid_unknown_fields=False, omit_defaults=True):
    pass


# --- connection set-up -----------------------------------------------------------------


class Hello(_Frame, tag="hello"):
    """Client → relay, first frame: the protocol versions the client speaks."""

    id: ReqId
    versions: list[int]
    agent: ShortStr = ""  # free text, e.g. "tenchat/0.1.0"


class Welcome(_Frame, tag="welcome"):
    """Relay → client, answer to hello: the chosen version and the auth challenge."""

    id: ReqId
    version: int
    relay: str  # the relay's name: shown and pinned by clients, never signed
    challenge: bytes  # 32 random bytes, fresh per connection
    max_frame: int  # the largest frame, in bytes, the relay accepts
    max_blob: int = 0  # the largest media blob, in bytes, the relay stores (0: no blobs)
    # Proof-of-work bits a `register` on this connection must carry (0: none asked);
    # see common.identity.pow_ok and docs/protocol.md.
    pow: Annotated[int, msgspec.Meta(ge=0, le=32)] = 0


class Auth(_Frame, tag="auth"):
    """Client → relay: Ed25519 signature over ``auth_message(origin, challenge)``."""

    id: ReqId
    user: Key32  # the identity's Ed25519 public key = its user id
    sig: Sig64
    # The canonical origin (scheme://host[:port]) of the URL the client dialled; the relay
    # refuses one that is not among its own (config ``origins``) with auth_failed.
    origin: ShortStr = ""


class Authed(_Frame, tag="authed"):
    """Relay → client, answer to auth."""

    id: ReqId
    user: Key32
    handle: str | None = None  # the handle this identity holds, if any
    otk_count: int = 0  # one-time prekeys the relay still holds for this identity


# --- handles -----------------------------------------------------------------------------


class Register(_Frame, tag="register"):
    """Claim a handle: ``sig`` is the identity's signature over ``handle_message``."""

    id: ReqId
    handle: ShortStr
    sig: Sig64
    invite: ShortStr = ""  # an invite code; needed on an invite-only relay
    pow: Annotated[bytes, msgspec.Meta(max_length=32)] = b""  # the proof-of-work nonce


class Lookup(_Frame, tag="lookup"):
    """Resolve a handle to its identity. Answer: :class:`HandleInfo`."""

    id: ReqId
    handle: ShortStr


class Whois(_Frame, tag="whois"):
    """Resolve an identity to its handle. Answer: :class:`HandleInfo`."""

    id: ReqId
    user: Key32


class HandleInfo(_Frame, tag="handle"):
    """A handle binding as registered; clients verify ``sig`` themselves."""

    id: ReqId
    handle: str
    user: Key32
    sig: Sig64


# --- prekeys -----------------------------------------------------------------------------


class SignedPrekey(msgspec.Struct, omit_defaults=True):
    key_id: Annotated[int, msgspec.Meta(ge=0, lt=2**32)]
    pub: Key32  # X25519 public key
    sig: Sig64  # identity signature over signed_prekey_message(pub)


class OneTimePrekey(msgspec.Struct):
    key_id: Annotated[int, msgspec.Meta(ge=0, lt=2**32)]
    pub: Key32  # X25519 public key


class PublishPrekeys(_Frame, tag="publish_prekeys"):
    """Publish a signed prekey (replacing the old one) and/or add one-time prekeys."""

    id: ReqId
    user: Key32  # must be the authenticated identity
    spk: SignedPrekey | None = None
    otks: Annotated[list[OneTimePrekey], msgspec.Meta(max_length=1000)] = []


class PrekeyStatus(_Frame, tag="prekey_status"):
    """Answer to publish_prekeys: how many one-time prekeys the relay now holds."""

    id: ReqId
    otk_count: int


class FetchBundle(_Frame, tag="fetch_bundle"):
    """Fetch a prekey bundle to start a session; consumes one one-time prekey."""

    id: ReqId
    user: Key32


class Bundle(_Frame, tag="bundle"):
    id: ReqId
    user: Key32  # identity key (Ed25519)
    spk: SignedPrekey
    otk: OneTimePrekey | None = None  # absent when the relay has run out


class PrekeysLow(_Frame, tag="prekeys_low"):
    """Push: the relay holds fewer one-time prekeys than its refill threshold."""

    otk_count: int


# --- messages ----------------------------------------------------------------------------


class Send(_Frame, tag="send"):
    """Queue an opaque ciphertext for ``to``. Answer: :class:`Stored` after the commit.

    With ``eph`` the relay only pushes it to the recipient's live connections and
    stores nothing (typing indicators); the answer is then :class:`Ok`.
    """

    id: ReqId
    to: Key32
    msg: MsgId  # client-made unique id; a retry with the same id is stored once
    body: bytes
    eph: bool = False
    expires_at: Annotated[int, msgspec.Meta(ge=0, le=UINT_MAX)] = 0  # ms; 0 = never. Dropped after.
    # A message the user wrote (not a receipt, key distribution or other automatic
    # message): only these make the recipient a contact who may see the sender's presence.
    conv: bool = False


class Stored(_Frame, tag="stored"):
    id: ReqId
    msg: MsgId
    seq: Seq  # the message's place in the recipient's queue
    at: int  # relay time of storing, ms since the Unix epoch


class Ack(_Frame, tag="ack"):
    """The recipient has committed these messages; the relay deletes them."""

    id: ReqId
    seqs: Annotated[list[Seq], msgspec.Meta(min_length=1, max_length=4096)]


class Subscribe(_Frame, tag="subscribe"):
    """Start pushes: the pending queue in order, then :class:`Synced`, then live messages."""

    id: ReqId


class Fetch(_Frame, tag="fetch"):
    """Pull a page of one's own queue (``user`` must be the authenticated identity)."""

    id: ReqId
    user: Key32
    after: Seq = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class Deliver(_Frame, tag="msg"):
    """A queued (or ephemeral, ``seq`` 0) message, pushed or inside :class:`Messages`."""

    seq: Seq
    msg: MsgId
    sender: Key32
    at: int
    body: bytes


class Messages(_Frame, tag="messages"):
    id: ReqId
    items: list[Deliver]
    more: bool = False


class Synced(_Frame, tag="synced"):
    """Push: every message queued before the subscription has been pushed."""

    seq: Seq  # the last pushed seq (0 if none)


# --- presence ----------------------------------------------------------------------------


class Watch(_Frame, tag="watch"):
    """Replace this connection's presence watch list. Answer: :class:`PresenceState`."""

    id: ReqId
    users: Annotated[list[Key32], msgspec.Meta(max_length=1024)]


class PresenceState(_Frame, tag="presence_state"):
    id: ReqId
    online: list[Key32]  # the watched users that are online now


class Presence(_Frame, tag="presence"):
    """Push: a watched user came online (first subscribed connection) or went offline."""

    user: Key32
    online: bool


# --- groups (fan-out on read: one log per group, a cursor per member) ----------------------


class GroupChangeReq(_Frame, tag="group_change"):
    """Create a group or change it: a signed record (common.groups). Answer: GroupStored."""

    id: ReqId
    record: Annotated[bytes, msgspec.Meta(max_length=64 * 1024)]


class GroupSend(_Frame, tag="group_send"):
    """Post a sender-key ciphertext to a group's log, once. Answer: GroupStored.

    With ``eph`` (typing indicators) the relay stores nothing and only pushes it, as a
    ``gmsg`` with ``gseq`` 0, to the other members' live connections; the answer is Ok.
    """

    id: ReqId
    group: GroupId
    msg: MsgId
    body: bytes
    expires_at: Annotated[int, msgspec.Meta(ge=0, le=UINT_MAX)] = 0
    eph: bool = False


class GroupStored(_Frame, tag="group_stored"):
    id: ReqId
    group: GroupId
    gseq: Seq  # the entry's place in the group's log
    at: int


class GroupInfo(_Frame, tag="group_info"):
    """The group's signed records after ``after_version``. Members only."""

    id: ReqId
    group: GroupId
    after_version: Annotated[int, msgspec.Meta(ge=0, le=UINT_MAX)] = 0


class GroupHistory(_Frame, tag="group_history"):
    id: ReqId
    group: GroupId
    version: int  # the group's current version
    records: list[bytes]  # SignedChange records, in version order
    more: bool = False


class GroupList(_Frame, tag="group_list"):
    """The groups the caller is a member of. Answer: Groups."""

    id: ReqId


class GroupSummary(msgspec.Struct):
    group: GroupId
    version: int
    role: str
    cursor: Seq  # the caller's read position in the log
    last: Seq  # the log's latest gseq


class Groups(_Frame, tag="groups"):
    id: ReqId
    groups: list[GroupSummary]


class GroupDeliver(_Frame, tag="gmsg"):
    """A group log entry: a sender-key message, or (``change``) a signed record."""

    group: GroupId
    gseq: Seq
    msg: MsgId
    sender: Key32
    at: int
    body: bytes
    change: bool = False


class GroupAck(_Frame, tag="group_ack"):
    """Move the caller's cursor in a group's log forward to ``upto``."""

    id: ReqId
    group: GroupId
    upto: Seq


# --- privacy --------------------------------------------------------------------------


class Privacy(_Frame, tag="privacy"):
    """The caller's relay-side privacy settings. Answer: Ok."""

    id: ReqId
    hide_presence: bool = False  # the relay reports this user offline to everyone


class Block(_Frame, tag="block"):
    """Block (or unblock) a user: the relay drops their messages to the caller."""

    id: ReqId
    user: Key32
    blocked: bool = True


# --- sealed sender (docs/protocol.md §5.10; the envelope: common.crypto.sealed) -----------


class SealedAccess(_Frame, tag="sealed_access"):
    """Who may send the caller sealed messages: holders of the access key whose
    ``verifier`` (common.crypto.sealed.access_verifier) this is, or anyone (``anyone``).
    An empty verifier and ``anyone`` false: no one (the default). Answer: Ok."""

    id: ReqId
    verifier: Annotated[bytes, msgspec.Meta(max_length=32)] = b""  # 0 or 32 bytes
    anyone: bool = False


class SealedSend(_Frame, tag="sealed_send"):
    """Queue a sealed envelope for ``to`` without saying who sends it: allowed on a
    connection that never authenticated. ``access`` is the recipient's access key.
    Answer: Stored after the commit."""

    id: ReqId
    to: Key32
    msg: MsgId  # client-made unique id; a retry with the same (to, msg) is stored once
    body: bytes
    access: Annotated[bytes, msgspec.Meta(max_length=16)] = b""  # 0 or 16 bytes
    expires_at: Annotated[int, msgspec.Meta(ge=0, le=UINT_MAX)] = 0


# --- media blobs (content-addressed ciphertext; see common.crypto.media) --------------------


class BlobBegin(_Frame, tag="blob_begin"):
    """Start or resume uploading the blob ``hash`` of ``size`` bytes. Answer: BlobStatus."""

    id: ReqId
    hash: BlobHash  # BLAKE2b-256 of the whole blob: its id
    size: BlobSize


class BlobChunk(_Frame, tag="blob_chunk"):
    """Append ``data`` at ``offset`` (= bytes received so far). Answer: BlobStatus."""

    id: ReqId
    hash: BlobHash
    offset: Offset
    data: Annotated[bytes, msgspec.Meta(min_length=1)]


class BlobStatus(_Frame, tag="blob_status"):
    """How much of the blob the relay holds: ``offset == size`` means stored for good."""

    id: ReqId
    hash: BlobHash
    offset: Offset
    size: Offset


class BlobGet(_Frame, tag="blob_get"):
    """Read ``length`` bytes of a stored blob from ``offset``. Answer: BlobData."""

    id: ReqId
    hash: BlobHash
    offset: Offset = 0
    length: Annotated[int, msgspec.Meta(ge=1, le=2**53)] = 2**20


class BlobData(_Frame, tag="blob_data"):
    """A range of a blob; shorter than asked at the end, or to fit max_frame."""

    id: ReqId
    hash: BlobHash
    offset: Offset
    data: bytes
    size: Offset  # the whole blob's size


# --- social: profiles and follows (signed public records; see common.social) -----------

SocialRecord = Annotated[bytes, msgspec.Meta(max_length=8 * 1024)]
FollowKind = Annotated[str, msgspec.Meta(pattern="^(followers|following|requests)$")]


class ProfileSet(_Frame, tag="profile_set"):
    """Publish one's signed profile record. Answer: ProfileInfo (the newest held)."""

    id: ReqId
    record: SocialRecord


class ProfileGet(_Frame, tag="profile_get"):
    """A user's newest profile record. Answer: ProfileInfo, or not_found."""

    id: ReqId
    user: Key32


class ProfileInfo(_Frame, tag="profile"):
    id: ReqId
    record: bytes  # a signed profile record; clients verify it themselves


class FollowReq(_Frame, tag="follow"):
    """Follow a user: a follow record signed by the caller. Answer: FollowState."""

    id: ReqId
    record: SocialRecord


class FollowState(_Frame, tag="follow_state"):
    id: ReqId
    target: Key32
    state: str  # "following", or "requested" (a private account must approve)


class Unfollow(_Frame, tag="unfollow"):
    """Stop following ``user`` (or withdraw a request). Answer: Ok."""

    id: ReqId
    user: Key32


class ApproveReq(_Frame, tag="approve"):
    """Approve a pending follow request: an approval record signed by the caller. Answer: Ok."""

    id: ReqId
    record: SocialRecord


class RemoveFollower(_Frame, tag="remove_follower"):
    """Deny ``user``'s request to follow the caller, or remove them as a follower. Answer: Ok."""

    id: ReqId
    user: Key32


class FollowList(_Frame, tag="follow_list"):
    """A page of ``user``'s followers, followings, or (own only) pending requests."""

    id: ReqId
    user: Key32
    kind: FollowKind
    offset: Annotated[int, msgspec.Meta(ge=0, le=UINT_MAX)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100


class FollowEntry(msgspec.Struct, omit_defaults=True):
    follow: bytes  # the follower's signed follow record
    approval: bytes | None = None  # the owner's signed approval (private accounts)


class FollowItems(_Frame, tag="follow_items"):
    id: ReqId
    user: Key32
    kind: str
    items: list[FollowEntry]
    more: bool = False


# --- social: posts (signed records; followers-only ones are ciphertext) -------------------


class PostPut(_Frame, tag="post_put"):
    """Publish a signed post record (common.social): signed by, and authored by, the
    caller. Answer: Ok."""

    id: ReqId
    record: Annotated[bytes, msgspec.Meta(max_length=48 * 1024)]


class Feed(_Frame, tag="feed"):
    """A page of post records, newest first: by ``authors``, or (left out) by the accounts
    the caller follows and the caller. ``before``: a post id; only older posts."""

    id: ReqId
    authors: Annotated[list[Key32], msgspec.Meta(max_length=1000)] | None = None
    before: MsgId | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50


class FeedItems(_Frame, tag="feed_items"):
    id: ReqId
    records: list[bytes]  # signed post records, newest first; clients verify each
    more: bool = False


class CommentPut(_Frame, tag="comment_put"):
    """Publish a signed comment record (common.social) on a stored post: signed by, and
    authored by, the caller; ``post_author`` must be the post's author. Answer: Ok."""

    id: ReqId
    record: Annotated[bytes, msgspec.Meta(max_length=16 * 1024)]


class ReactPut(_Frame, tag="react_put"):
    """Set (or, ``removed``, delete) the caller's reaction with one emoji on a post.
    Answer: Ok."""

    id: ReqId
    record: Annotated[bytes, msgspec.Meta(max_length=8 * 1024)]


class PostExtrasReq(_Frame, tag="post_extras"):
    """Comment and reaction counts of up to 50 posts. Answer: PostExtras."""

    id: ReqId
    post_ids: Annotated[list[MsgId], msgspec.Meta(max_length=50)]


class PostExtra(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    post_id: MsgId
    comments: int = 0
    reactions: dict[str, int] = {}  # emoji -> count


class PostExtras(_Frame, tag="post_extras_items"):
    id: ReqId
    items: list[PostExtra]  # one per asked post id, in order


class CommentsReq(_Frame, tag="comments"):
    """A page of a post's comment records, newest first; ``before``: a comment id."""

    id: ReqId
    post_id: MsgId
    before: MsgId | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50


class CommentItems(_Frame, tag="comment_items"):
    id: ReqId
    records: list[bytes]  # signed comment records, newest first; clients verify each
    more: bool = False


# --- stories (sealed, signed, expiring records) --------------------------------------------


class StoryPut(_Frame, tag="story_put"):
    """Publish a signed, sealed story record (common.stories): authored by the caller,
    unexpired, living at most 24 h; its ``blob``, if any, must be the caller's stored blob
    (it is then deleted with the story). Answer: Ok."""

    id: ReqId
    record: Annotated[bytes, msgspec.Meta(max_length=16 * 1024)]


class StoriesReq(_Frame, tag="stories"):
    """The unexpired story records of ``authors`` or (left out) of the accounts the caller
    follows and the caller, newest first. Answer: StoryItems."""

    id: ReqId
    authors: Annotated[list[Key32], msgspec.Meta(max_length=1000)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 500


class StoryItems(_Frame, tag="story_items"):
    id: ReqId
    records: list[bytes]  # signed story records, newest first; clients verify each
    more: bool = False


class StoryNew(_Frame, tag="story_new"):
    """Push: ``author``, whom this identity follows (an approved follow), stored the new
    story ``story``; no content: fetch it with :class:`StoriesReq`."""

    author: Key32
    story: MsgId



# --- wallets: bindings of Ethereum accounts to identities (common.wallets) ----------------

Address = Annotated[str, msgspec.Meta(pattern="^0x[0-9a-fA-F]{40}$")]


class WalletLinkPut(_Frame, tag="wallet_link"):
    """Publish a wallet binding record (common.wallets) for the caller. Answer: Ok."""

    id: ReqId
    record: Annotated[bytes, msgspec.Meta(max_length=4096)]


class WalletUnlink(_Frame, tag="wallet_unlink"):
    """Withdraw the caller's binding of ``address``. Answer: Ok (not_found if none)."""

    id: ReqId
    address: Address


class WalletsGet(_Frame, tag="wallets"):
    """The binding records of ``user``. Answer: WalletLinks."""

    id: ReqId
    user: Key32


class WalletLinks(_Frame, tag="wallet_links"):
    id: ReqId
    user: Key32
    records: list[bytes]  # signed binding records; clients verify each


class WalletAuth(_Frame, tag="wallet_auth"):
    """Instead of auth: a SIWE sign-in message (nonce = the challenge, hex) signed by a
    wallet linked on this relay. Answer: Authed for the identity the wallet is linked to."""

    id: ReqId
    message: Annotated[str, msgspec.Meta(max_length=2048)]
    sig: Annotated[bytes, msgspec.Meta(min_length=65, max_length=65)]


class DevicesPut(_Frame, tag="devices_put"):
    """Publish an account's signed device list (common.devices). Answer: Ok."""

    id: ReqId
    record: Annotated[bytes, msgspec.Meta(max_length=8192)]


class DevicesGet(_Frame, tag="devices_get"):
    """The device list of the account ``user``, or of the account ``user`` is a device of.
    Answer: DevicesInfo (not_found if none)."""

    id: ReqId
    user: Key32


class DevicesInfo(_Frame, tag="devices"):
    id: ReqId
    record: bytes  # the signed list; clients verify it (common.devices.open_list)


class LinkPut(_Frame, tag="link_put"):
    """Leave an opaque blob in a rendezvous slot for one taker (device linking).
    Answer: Ok."""

    id: ReqId
    slot: Key32
    blob: Annotated[bytes, msgspec.Meta(max_length=262144)]


class LinkTake(_Frame, tag="link_take"):
    """Take (and so delete) the blob of a rendezvous slot. Answer: LinkBlob (not_found
    while the slot is empty)."""

    id: ReqId
    slot: Key32


class LinkBlob(_Frame, tag="link_blob"):
    id: ReqId
    blob: bytes


class Ok(_Frame, tag="ok"):
    id: ReqId


class Moderate(_Frame, tag="moderate"):
    """An admin or moderator action (roles are set in the relay's config). Answer: ok."""

    id: ReqId
    action: Annotated[str, msgspec.Meta(max_length=32)]  # see MODERATE_ACTIONS
    target: Annotated[bytes, msgspec.Meta(min_length=1, max_length=64)]  # post, comment or user
    reason: ShortStr = ""


# action -> the least role allowed to take it
MODERATE_ACTIONS: Final = {
    "remove_post": "moderator",
    "remove_comment": "moderator",
    "ban": "admin",
    "unban": "admin",
}


class Error(_Frame, tag="error"):
    id: ReqId | None
    error: str  # a code from ErrorCode
    message: str = ""
    retry_after: int = 0  # rate_limited: milliseconds until the frame would be accepted


Request = (
    Hello | Auth | Register | Lookup | Whois | PublishPrekeys | FetchBundle | Send | Ack
    | Subscribe | Fetch | Watch | GroupChangeReq | GroupSend | GroupInfo | GroupList | GroupAck
    | Privacy | Block | SealedAccess | SealedSend | BlobBegin | BlobChunk | BlobGet
    | ProfileSet | ProfileGet | FollowReq | Unfollow | ApproveReq | RemoveFollower | FollowList
    | PostPut | Feed | CommentPut | ReactPut | PostExtrasReq | CommentsReq
    | Moderate
    | StoryPut | StoriesReq
    | WalletLinkPut | WalletUnlink | WalletsGet | WalletAuth
    | DevicesPut | DevicesGet | LinkPut | LinkTake
)
Reply = (
    Welcome | Authed | HandleInfo | PrekeyStatus | Bundle | PrekeysLow | Stored | Messages
    | Deliver | Synced | PresenceState | Presence | GroupStored | GroupHistory | Groups
    | GroupDeliver | BlobStatus | BlobData | ProfileInfo | FollowState | FollowItems
    | FeedItems | PostExtras | CommentItems | StoryItems | StoryNew | WalletLinks | DevicesInfo
    | LinkBlob | Ok | Error
)

REQUEST_TYPES: Final = frozenset(
    cls.__struct_config__.tag for cls in Request.__args__  # type: ignore[attr-defined]
)

_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(Request)
_reply_decoder = msgspec.msgpack.Decoder(Reply)
_any_decoder = msgspec.msgpack.Decoder()


def encode(frame: msgspec.Struct) -> bytes:
    return _encoder.encode(frame)


def peek_id(data: bytes) -> int | None:
    """Best-effort request id of an undecodable frame, so its error can name it."""
    try:
        raw = _any_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(raw, dict):
        rid = raw.get("id")
        if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= 2**53:
            return rid
    return None


def _classify(data: bytes, exc: Exception, known: frozenset[str] | None) -> ProtocolError:
    if isinstance(exc, RecursionError):
        return ProtocolError(ErrorCode.MALFORMED, "nested too deeply")
    try:
        raw: Any = _any_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):  # a str that is not UTF-8
        return ProtocolError(ErrorCode.MALFORMED, "not a MessagePack value")
    except RecursionError:
        return ProtocolError(ErrorCode.MALFORMED, "nested too deeply")
    if not isinstance(raw, dict):
        return ProtocolError(ErrorCode.MALFORMED, "a frame must be a map")
    t = raw.get("t")
    if not isinstance(t, str):
        return ProtocolError(ErrorCode.MALFORMED, 'missing string field "t"')
    if known is not None and t not in known:
        return ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {t[:40]!r}")
    return ProtocolError(ErrorCode.MALFORMED, str(exc))


def decode_request(data: bytes) -> Request:
    """Decode a client frame; raise ProtocolError(malformed | unknown_type). A value
    nested deeper than the decoder's recursion limit (about 1,000 levels, less on a deep
    stack) is ``malformed`` too, like any other undecodable frame."""
    try:
        return _request_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError,
            RecursionError) as exc:
        raise _classify(data, exc, REQUEST_TYPES) from None


def decode_reply(data: bytes) -> Reply:
    """Decode a relay frame (answer or push); raise ProtocolError(malformed)."""
    try:
        return _reply_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError,
            RecursionError) as exc:
        raise _classify(data, exc, None) from None
