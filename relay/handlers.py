"""One small async handler per request frame, found through a dispatch table.

A handler validates (raising ProtocolError with a wire code), then either
returns its answer, returns a :class:`Later` (writes: the answer is built when
the commit resolves the store's future, while the connection goes on
reading), or returns None when it has answered itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from tenchat.common import groups, identity, social
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    SUPPORTED_VERSIONS,
    Ack,
    ApproveReq,
    Auth,
    Authed,
    BlobBegin,
    BlobChunk,
    BlobData,
    BlobGet,
    BlobStatus,
    Block,
    Bundle,
    CommentItems,
    CommentPut,
    CommentsReq,
    Deliver,
    Feed,
    FeedItems,
    Fetch,
    FetchBundle,
    FollowEntry,
    FollowItems,
    FollowList,
    FollowReq,
    FollowState,
    GroupAck,
    GroupChangeReq,
    GroupDeliver,
    GroupHistory,
    GroupInfo,
    GroupList,
    Groups,
    GroupSend,
    GroupStored,
    HandleInfo,
    Hello,
    Lookup,
    Messages,
    Ok,
    PostExtra,
    PostExtras,
    PostExtrasReq,
    PostPut,
    PrekeyStatus,
    PresenceState,
    Privacy,
    ProfileGet,
    ProfileInfo,
    ProfileSet,
    PublishPrekeys,
    ReactPut,
    Register,
    RemoveFollower,
    Send,
    Stored,
    Subscribe,
    Unfollow,
    Watch,
    Welcome,
    Whois,
)

from .blobs import BlobFiles
from .session import Later, Session, Subscription, check_authenticated
from .storage import BlobBegun, BundleRecord, HandleRecord

__all__ = ["HANDLERS", "dispatch", "Answer"]

Answer = msgspec.Struct | Later | None
Handler = Callable[[Session, Any], Awaitable[Answer]]

HANDLERS: dict[type[msgspec.Struct], Handler] = {}

F = TypeVar("F", bound=Handler)


def handles(frame_type: type[msgspec.Struct]) -> Callable[[F], F]:
    def register(fn: F) -> F:
        HANDLERS[frame_type] = fn
        return fn

    return register


async def dispatch(session: Session, frame: msgspec.Struct) -> Answer:
    handler = HANDLERS.get(type(frame))
    if handler is None:  # a request type the relay decodes but does not serve (yet)
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unsupported frame {type(frame).__name__}")
    return await handler(session, frame)


def _handle_info(rid: int, rec: HandleRecord) -> HandleInfo:
    return HandleInfo(id=rid, handle=rec.handle, user=rec.user, sig=rec.sig)


# --- connection set-up ---------------------------------------------------------------------


@handles(Hello)
async def hello(session: Session, frame: Hello) -> Answer:
    if session.version is not None:
        raise ProtocolError(ErrorCode.PROTOCOL, "hello was already answered")
    common = set(frame.versions) & set(SUPPORTED_VERSIONS)
    if not common:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"this relay speaks versions {list(SUPPORTED_VERSIONS)}",
        )
    session.version = max(common)
    if not session.guards.is_exempt(session.address):
        session.register_pow = session.config.register_pow
    return Welcome(
        id=frame.id,
        version=session.version,
        relay=session.config.name,
        challenge=session.challenge,
        max_frame=session.config.max_frame,
        max_blob=session.config.max_blob if session.blobs is not None else 0,
        pow=session.register_pow,
    )


def _rate_limited(what: str, wait: float) -> ProtocolError:
    return ProtocolError(ErrorCode.RATE_LIMITED, f"{what}: retry in {math.ceil(wait)} s",
                         retry_after=max(1, math.ceil(wait * 1000)))


async def admit_identity(session: Session, user: bytes) -> None:
    """Before an identity signs in: one new to this relay (no handle, no prekeys, not seen
    since the relay started) takes a token of its address's ident_rate (issue 12: free
    throwaway identities got around the blob quota). rate_limited past it."""
    guards = session.guards
    if (not session.config.ident_rate or guards.is_exempt(session.address)
            or user in guards.admitted or await session.store.user_exists(user)):
        return
    if wait := guards.new_identities.take(session.address):
        raise _rate_limited("too many new identities from this address", wait)
    if len(guards.admitted) >= 100_000:
        guards.admitted.clear()
    guards.admitted.add(user)


@handles(Auth)
async def auth(session: Session, frame: Auth) -> Answer:
    if session.version is None:
        raise ProtocolError(ErrorCode.PROTOCOL, "send hello before auth")
    if session.user is not None:
        raise ProtocolError(ErrorCode.PROTOCOL, "this connection is already authenticated")
    from .admin import auth_failed, disconnect, role_of

    if frame.origin not in session.origins:
        # Signed for another relay URL (or by an old client): a relay in the middle may be
        # forwarding someone's sign-in here.
        auth_failed(session, "foreign origin", frame.user, "foreign origin", actor=frame.user)
        raise ProtocolError(
            ErrorCode.AUTH_FAILED,
            f"auth names origin {frame.origin[:80]!r}, which is not this relay's",
        )
    message = identity.auth_message(frame.origin, session.challenge)
    if not identity.verify_signature(frame.user, message, frame.sig):
        auth_failed(session, "bad signature", frame.user, "bad signature", actor=frame.user)
        raise ProtocolError(ErrorCode.AUTH_FAILED, "the signature over the challenge is invalid")
    if await session.store.is_banned(frame.user):
        auth_failed(session, "banned", frame.user, "banned", actor=frame.user)
        disconnect(session, "banned")
        raise ProtocolError(ErrorCode.BANNED, "this identity is banned from this relay")
    await admit_identity(session, frame.user)
    session.user = frame.user
    session.hub.join(session)
    if await session.store.hide_presence(frame.user):
        session.hub.set_hidden(frame.user, True)
    rec = await session.store.handle_by_user(frame.user)
    session.handle = rec.handle if rec else None
    session.role = role_of(session.config, frame.user, session.handle)
    count = await session.store.otk_count(frame.user)
    return Authed(
        id=frame.id, user=frame.user, handle=rec.handle if rec else None, otk_count=count
    )


# --- handles -----------------------------------------------------------------------------


@handles(Register)
async def register(session: Session, frame: Register) -> Answer:
    user = check_authenticated(session)
    handle = identity.normalize_handle(frame.handle)
    if not identity.verify_signature(user, identity.handle_message(handle, user), frame.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "sig is not over handle_message(handle, user)")
    await _may_register(session, user, handle, frame)
    if session.config.registration == "invite-only":
        from .admin import register_invited

        return register_invited(session, frame, handle)

    def answer(rec: HandleRecord) -> HandleInfo:
        from .admin import role_of

        session.handle = rec.handle
        session.role = role_of(session.config, user, rec.handle)
        return _handle_info(frame.id, rec)

    return Later(session.store.register(user, handle, frame.sig), answer)


async def _may_register(session: Session, user: bytes, handle: str, frame: Register) -> None:
    """The registration checks of issue 12: reserved handles (admins only, or a handle
    the config itself names in ``admins`` / ``moderators``), the
    connection's proof-of-work, the address's handle_rate. The owner registering its own
    handle again passes (nothing changes)."""
    rec = await session.store.handle_by_user(user)
    if rec is not None and rec.handle == handle:
        return
    config = session.config
    if (handle in config.reserved_handles and session.role != "admin"
            and "@" + handle not in config.admins + config.moderators):
        raise ProtocolError(ErrorCode.HANDLE_RESERVED, f"@{handle} is reserved on this relay")
    bits = session.register_pow
    # An empty nonce never counts: "no proof-of-work" must be refused every time, not pass
    # by luck one time in 2**bits.
    if bits and (not frame.pow
                 or not identity.pow_ok(session.challenge, user, handle, frame.pow, bits)):
        raise ProtocolError(ErrorCode.POW_REQUIRED,
                            f"this relay asks a proof-of-work of {bits} bits (welcome.pow)")
    if (config.handle_rate and not session.guards.is_exempt(session.address)
            and (wait := session.guards.registrations.take(session.address))):
        raise _rate_limited("too many handle registrations from this address", wait)


@handles(Lookup)
async def lookup(session: Session, frame: Lookup) -> Answer:
    check_authenticated(session)
    handle = identity.normalize_handle(frame.handle)
    rec = await session.store.handle_by_name(handle)
    if rec is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no identity holds @{handle}")
    return _handle_info(frame.id, rec)


@handles(Whois)
async def whois(session: Session, frame: Whois) -> Answer:
    check_authenticated(session)
    rec = await session.store.handle_by_user(frame.user)
    if rec is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "this identity holds no handle")
    return _handle_info(frame.id, rec)


# --- prekeys -----------------------------------------------------------------------------


@handles(PublishPrekeys)
async def publish_prekeys(session: Session, frame: PublishPrekeys) -> Answer:
    user = check_authenticated(session)
    if frame.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "prekeys can only be published for oneself")
    spk = frame.spk
    if spk is not None and not identity.verify_signature(
        user, identity.signed_prekey_message(spk.pub), spk.sig
    ):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "spk.sig does not verify")
    return Later(
        session.store.publish_prekeys(user, spk, frame.otks),
        lambda count: PrekeyStatus(id=frame.id, otk_count=count),
    )


@handles(FetchBundle)
async def fetch_bundle(session: Session, frame: FetchBundle) -> Answer:
    user = check_authenticated(session)
    guards = session.guards
    if wait := guards.bundles.take(user):
        raise _rate_limited("too many prekey bundles fetched", wait)
    # Past the target's otk_rate the bundle has no one-time prekey (X3DH works without
    # one): refusing instead would let anyone stop others from reaching the target.
    with_otk = frame.user == user or not guards.otks.take(frame.user)

    def answer(rec: BundleRecord | None) -> Bundle:
        if rec is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "this identity has published no prekeys")
        if rec.otk is not None and rec.otk_count < session.config.otk_low:
            session.hub.prekeys_low(frame.user, rec.otk_count)
        return Bundle(id=frame.id, user=frame.user, spk=rec.spk, otk=rec.otk)

    return Later(session.store.take_bundle(frame.user, with_otk), answer)


# --- messages ----------------------------------------------------------------------------


@handles(Send)
async def send(session: Session, frame: Send) -> Answer:
    sender = check_authenticated(session)
    if not await session.store.user_exists(frame.to):
        raise ProtocolError(ErrorCode.NOT_FOUND, "the recipient is not registered here")
    if frame.eph:
        # From a blocked sender: answered the same, pushed to no one.
        if not await session.store.is_blocked(frame.to, sender):
            at = time.time_ns() // 1_000_000
            item = Deliver(seq=0, msg=frame.msg, sender=sender, at=at, body=frame.body)
            session.hub.publish_ephemeral(frame.to, item)
        return Ok(id=frame.id)
    # A blocked sender's message is answered with a normal `stored` but never queued
    # (the store decides, in the same transaction as the dedupe).
    return Later(
        session.store.enqueue(frame.to, sender, frame.msg, frame.body, frame.expires_at,
                              frame.conv),
        lambda stored: Stored(id=frame.id, msg=frame.msg, seq=stored.seq, at=stored.at),
    )


@handles(Ack)
async def ack(session: Session, frame: Ack) -> Answer:
    user = check_authenticated(session)
    return Later(session.store.ack(user, frame.seqs), lambda _: Ok(id=frame.id))


@handles(Subscribe)
async def subscribe(session: Session, frame: Subscribe) -> Answer:
    check_authenticated(session)
    await session.send(Ok(id=frame.id))
    if session.subscription is None:  # subscribing again changes nothing
        session.subscription = Subscription(session)
        session.subscription.start()
    return None


@handles(Fetch)
async def fetch(session: Session, frame: Fetch) -> Answer:
    user = check_authenticated(session)
    if frame.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "only one's own queue can be fetched")
    items = await session.store.pending(user, frame.after, frame.limit + 1)
    return Messages(id=frame.id, items=items[: frame.limit], more=len(items) > frame.limit)


@handles(Watch)
async def watch(session: Session, frame: Watch) -> Answer:
    """Presence is shown to contacts only: those the watched user has sent a 1:1 message
    to (and doesn't block). Others always look offline, until such a message."""
    user = check_authenticated(session)
    wanted = list(dict.fromkeys(frame.users))
    allowed = await session.store.contacts_of([u for u in wanted if u != user], user)
    allowed.add(user)
    online = session.hub.watch(session, [u for u in wanted if u in allowed],
                               [u for u in wanted if u not in allowed])
    return PresenceState(id=frame.id, online=online)


# --- groups ------------------------------------------------------------------------------

GROUP_HISTORY_PAGE = 256  # records per group_history answer, at most


@handles(GroupChangeReq)
async def group_change(session: Session, frame: GroupChangeReq) -> Answer:
    user = check_authenticated(session)
    change, _signed = groups.decode_signed(frame.record)  # malformed | bad_signature
    if change.actor != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a change must be made by the connection's user")
    return Later(
        session.store.group_change(change, frame.record),
        lambda st: GroupStored(id=frame.id, group=change.group, gseq=st.seq, at=st.at),
    )


@handles(GroupSend)
async def group_send(session: Session, frame: GroupSend) -> Answer:
    user = check_authenticated(session)
    if frame.eph:
        # Typing indicators: members only, stored nowhere, pushed to live members.
        if await session.store.group_head(frame.group, user) is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, "not a member of this group")
        at = time.time_ns() // 1_000_000
        item = GroupDeliver(group=frame.group, gseq=0, msg=frame.msg, sender=user, at=at,
                            body=frame.body)
        session.hub.publish_group_ephemeral(item)
        return Ok(id=frame.id)
    return Later(
        session.store.group_post(frame.group, user, frame.msg, frame.body, frame.expires_at),
        lambda st: GroupStored(id=frame.id, group=frame.group, gseq=st.seq, at=st.at),
    )


@handles(GroupAck)
async def group_ack(session: Session, frame: GroupAck) -> Answer:
    user = check_authenticated(session)
    return Later(session.store.group_ack(user, frame.group, frame.upto), lambda _: Ok(id=frame.id))


@handles(GroupList)
async def group_list(session: Session, frame: GroupList) -> Answer:
    user = check_authenticated(session)
    return Groups(id=frame.id, groups=await session.store.group_summaries(user))


@handles(GroupInfo)
async def group_info(session: Session, frame: GroupInfo) -> Answer:
    user = check_authenticated(session)
    head = await session.store.group_head(frame.group, user)
    if head is None:
        raise ProtocolError(ErrorCode.FORBIDDEN, "not a member of this group")
    records = await session.store.group_records(
        frame.group, frame.after_version, GROUP_HISTORY_PAGE + 1
    )
    more = len(records) > GROUP_HISTORY_PAGE
    # Keep the answer within max_frame (always at least one record).
    budget = session.config.max_frame - 1024
    page: list[bytes] = []
    for record in records[:GROUP_HISTORY_PAGE]:
        budget -= len(record) + 8
        if page and budget < 0:
            more = True
            break
        page.append(record)
    return GroupHistory(id=frame.id, group=frame.group, version=head.version, records=page,
                        more=more)


# --- privacy -----------------------------------------------------------------------------


@handles(Privacy)
async def privacy(session: Session, frame: Privacy) -> Answer:
    user = check_authenticated(session)

    def answer(_: None) -> Ok:
        session.hub.set_hidden(user, frame.hide_presence)
        return Ok(id=frame.id)

    return Later(session.store.set_privacy(user, frame.hide_presence), answer)


@handles(Block)
async def block(session: Session, frame: Block) -> Answer:
    user = check_authenticated(session)
    def answer(_: None) -> Ok:
        if frame.blocked:
            session.hub.revoke(user, frame.user)  # a blocked contact sees no presence
        return Ok(id=frame.id)

    return Later(session.store.set_block(user, frame.user, frame.blocked), answer)


# --- media blobs -------------------------------------------------------------------------

# Room for everything of a blob_data frame but its data (type, ids, hash, sizes).
_BLOB_DATA_OVERHEAD = 256


def _blob_files(session: Session) -> BlobFiles:
    if session.blobs is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "this relay stores no blobs")
    return session.blobs


@handles(BlobBegin)
async def blob_begin(session: Session, frame: BlobBegin) -> Answer:
    user = check_authenticated(session)
    files = _blob_files(session)
    if frame.size > session.config.max_blob:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"a blob of {frame.size} bytes is over max_blob {session.config.max_blob}",
        )

    def answer(begun: BlobBegun) -> BlobStatus:
        if begun.stored:
            offset = begun.size
        else:
            if begun.new:  # a partial file from an upload forgotten since is stale
                files.discard(user, frame.hash)
            offset = files.received(user, frame.hash)
            if offset >= begun.size:  # a complete file that failed to publish: start over
                files.discard(user, frame.hash)
                offset = 0
        return BlobStatus(id=frame.id, hash=frame.hash, offset=offset, size=begun.size)

    # `tenchat-relay admin quota` may set a quota of one's own
    quota = await session.store.blob_quota(user)
    if quota is None:
        quota = session.config.blob_quota
    return Later(session.store.blob_begin(user, frame.hash, frame.size, quota), answer)


@handles(BlobChunk)
async def blob_chunk(session: Session, frame: BlobChunk) -> Answer:
    user = check_authenticated(session)
    files = _blob_files(session)
    size = await session.store.blob_upload(user, frame.hash)
    if size is None:
        stored = await session.store.blob_size(frame.hash)
        if stored is not None:  # e.g. a retried last chunk: already complete
            return BlobStatus(id=frame.id, hash=frame.hash, offset=stored, size=stored)
        raise ProtocolError(ErrorCode.PROTOCOL, "no upload of this blob: send blob_begin first")
    async with files.upload_lock(user, frame.hash):
        have = files.received(user, frame.hash)
        if frame.offset != have:
            raise ProtocolError(
                ErrorCode.PROTOCOL, f"chunk at offset {frame.offset}; the relay has {have} bytes"
            )
        if have + len(frame.data) > size:
            raise ProtocolError(ErrorCode.PROTOCOL, f"the chunk goes past the blob's size {size}")
        offset = await files.append(user, frame.hash, frame.data)
        if offset < size:
            return BlobStatus(id=frame.id, hash=frame.hash, offset=offset, size=size)
        if not await files.publish(user, frame.hash):
            await session.store.blob_abort(user, frame.hash)
            raise ProtocolError(
                ErrorCode.HASH_MISMATCH,
                "the uploaded bytes do not hash to the blob id; the upload was discarded",
            )
        await session.store.blob_commit(user, frame.hash, size)
    return BlobStatus(id=frame.id, hash=frame.hash, offset=size, size=size)


@handles(BlobGet)
async def blob_get(session: Session, frame: BlobGet) -> Answer:
    check_authenticated(session)
    files = _blob_files(session)
    size = await session.store.blob_size(frame.hash)
    if size is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no blob with this hash")
    if frame.offset > size:
        raise ProtocolError(ErrorCode.MALFORMED, f"offset {frame.offset} is past the end {size}")
    length = min(frame.length, size - frame.offset,
                 session.config.max_frame - _BLOB_DATA_OVERHEAD)
    try:
        data = await files.read(frame.hash, frame.offset, length)
    except FileNotFoundError:
        raise ProtocolError(ErrorCode.NOT_FOUND, "the blob's file is missing") from None
    return BlobData(id=frame.id, hash=frame.hash, offset=frame.offset, data=data, size=size)


# --- social: profiles and follows --------------------------------------------------------


@handles(ProfileSet)
async def profile_set(session: Session, frame: ProfileSet) -> Answer:
    user = check_authenticated(session)
    profile = social.open_profile(frame.record)  # malformed | bad_signature
    if profile.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a profile can only be set for oneself")
    return Later(
        session.store.set_profile(user, frame.record, profile.updated_at, profile.private),
        lambda record: ProfileInfo(id=frame.id, record=record),
    )


@handles(ProfileGet)
async def profile_get(session: Session, frame: ProfileGet) -> Answer:
    check_authenticated(session)
    record = await session.store.profile(frame.user)
    if record is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "this identity has no profile")
    return ProfileInfo(id=frame.id, record=record)


@handles(FollowReq)
async def follow(session: Session, frame: FollowReq) -> Answer:
    user = check_authenticated(session)
    rec = social.open_follow(frame.record)  # malformed | bad_signature
    if rec.follower != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a follow must be signed by the caller")
    if rec.target == user:
        raise ProtocolError(ErrorCode.MALFORMED, "one can't follow oneself")
    if not await session.store.user_exists(rec.target):
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such identity here")
    return Later(
        session.store.follow(user, rec.target, frame.record),
        lambda state: FollowState(id=frame.id, target=rec.target, state=state),
    )


@handles(ApproveReq)
async def approve(session: Session, frame: ApproveReq) -> Answer:
    user = check_authenticated(session)
    rec = social.open_approval(frame.record)  # malformed | bad_signature
    if rec.owner != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "an approval must be signed by the caller")
    return Later(session.store.approve(user, rec.follower, frame.record),
                 lambda _: Ok(id=frame.id))


@handles(Unfollow)
async def unfollow(session: Session, frame: Unfollow) -> Answer:
    user = check_authenticated(session)
    return Later(session.store.unfollow(user, frame.user), lambda _: Ok(id=frame.id))


@handles(RemoveFollower)
async def remove_follower(session: Session, frame: RemoveFollower) -> Answer:
    user = check_authenticated(session)
    return Later(session.store.unfollow(frame.user, user), lambda _: Ok(id=frame.id))


@handles(FollowList)
async def follow_list(session: Session, frame: FollowList) -> Answer:
    user = check_authenticated(session)
    if frame.kind == "requests" and frame.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "only one's own follow requests are listed")
    rows = await session.store.follow_page(frame.user, frame.kind, frame.offset,
                                           frame.limit + 1)
    items = [FollowEntry(follow=r, approval=a) for r, a in rows[: frame.limit]]
    return FollowItems(id=frame.id, user=frame.user, kind=frame.kind, items=items,
                       more=len(rows) > frame.limit)


# --- social: posts -----------------------------------------------------------------------


@handles(PostPut)
async def post_put(session: Session, frame: PostPut) -> Answer:
    user = check_authenticated(session)
    post = social.open_post(frame.record)  # malformed | bad_signature
    if post.author != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a post must be authored by the caller")
    return Later(
        session.store.put_post(user, post.id, frame.record, isinstance(post, social.Post)),
        lambda _: Ok(id=frame.id),
    )


@handles(Feed)
async def feed(session: Session, frame: Feed) -> Answer:
    user = check_authenticated(session)
    records = await session.store.feed_page(user, frame.authors, frame.before,
                                            frame.limit + 1)
    return FeedItems(id=frame.id, records=records[: frame.limit],
                     more=len(records) > frame.limit)


# --- social: comments and reactions ------------------------------------------------------


@handles(CommentPut)
async def comment_put(session: Session, frame: CommentPut) -> Answer:
    user = check_authenticated(session)
    comment = social.open_comment(frame.record)  # malformed | bad_signature
    if comment.author != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a comment must be authored by the caller")
    return Later(
        session.store.put_comment(comment.post_id, comment.post_author, comment.id,
                                  frame.record),
        lambda _: Ok(id=frame.id),
    )


@handles(ReactPut)
async def react_put(session: Session, frame: ReactPut) -> Answer:
    user = check_authenticated(session)
    r = social.open_reaction(frame.record)  # malformed | bad_signature
    if r.author != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a reaction must be authored by the caller")
    if not r.removed and not social.is_reaction_emoji(r.emoji):
        # (a removal may name anything: it takes away what older relays let in)
        raise ProtocolError(ErrorCode.BAD_REACTION,
                            f"a reaction is one emoji, not {r.emoji[:16]!r}")
    return Later(
        session.store.put_reaction(r.post_id, r.post_author, r.author, r.emoji, r.created_at,
                                   r.removed, frame.record),
        lambda _: Ok(id=frame.id),
    )


@handles(PostExtrasReq)
async def post_extras(session: Session, frame: PostExtrasReq) -> Answer:
    check_authenticated(session)
    counts = await session.store.post_extras(frame.post_ids)
    return PostExtras(id=frame.id, items=[
        PostExtra(post_id=p, comments=n, reactions=r)
        for p, (n, r) in zip(frame.post_ids, counts, strict=True)])


@handles(CommentsReq)
async def comments(session: Session, frame: CommentsReq) -> Answer:
    check_authenticated(session)
    records = await session.store.comment_page(frame.post_id, frame.before, frame.limit + 1)
    return CommentItems(id=frame.id, records=records[: frame.limit],
                        more=len(records) > frame.limit)


# Larger features keep their handlers in modules of their own; importing one registers it.
from . import admin, story_handlers  # noqa: E402, F401
from . import wallets as _wallets  # noqa: E402, F401  (registers the wallet handlers)
