"""Handlers of the social layer: profiles, follows, posts, comments and reactions."""

from __future__ import annotations

from tenchat.common import social
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    ApproveReq,
    CommentItems,
    CommentPut,
    CommentsReq,
    Feed,
    FeedItems,
    FollowEntry,
    FollowItems,
    FollowList,
    FollowReq,
    FollowState,
    Ok,
    PostExtra,
    PostExtras,
    PostExtrasReq,
    PostPut,
    ProfileGet,
    ProfileInfo,
    ProfileSet,
    ReactPut,
    RemoveFollower,
    Unfollow,
)

from ..session import Later, Session, acting_account, check_authenticated
from .table import Answer, HandlerTable

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


@HANDLERS.on(ProfileSet)
async def profile_set(session: Session, frame: ProfileSet) -> Answer:
    user = acting_account(session)
    profile = social.open_profile(frame.record)  # malformed | bad_signature
    if profile.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a profile can only be set for oneself")
    return Later(
        session.store.set_profile(user, frame.record, profile.updated_at, profile.private),
        lambda record: ProfileInfo(id=frame.id, record=record),
    )


@HANDLERS.on(ProfileGet)
async def profile_get(session: Session, frame: ProfileGet) -> Answer:
    check_authenticated(session)
    record = await session.store.profile(frame.user)
    if record is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "this identity has no profile")
    return ProfileInfo(id=frame.id, record=record)


@HANDLERS.on(FollowReq)
async def follow(session: Session, frame: FollowReq) -> Answer:
    user = acting_account(session)
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


@HANDLERS.on(ApproveReq)
async def approve(session: Session, frame: ApproveReq) -> Answer:
    user = acting_account(session)
    rec = social.open_approval(frame.record)  # malformed | bad_signature
    if rec.owner != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "an approval must be signed by the caller")
    return Later(session.store.approve(user, rec.follower, frame.record),
                 lambda _: Ok(id=frame.id))


@HANDLERS.on(Unfollow)
async def unfollow(session: Session, frame: Unfollow) -> Answer:
    user = acting_account(session)
    return Later(session.store.unfollow(user, frame.user), lambda _: Ok(id=frame.id))


@HANDLERS.on(RemoveFollower)
async def remove_follower(session: Session, frame: RemoveFollower) -> Answer:
    user = acting_account(session)
    return Later(session.store.unfollow(frame.user, user), lambda _: Ok(id=frame.id))


@HANDLERS.on(FollowList)
async def follow_list(session: Session, frame: FollowList) -> Answer:
    user = acting_account(session)
    if frame.kind == "requests" and frame.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "only one's own follow requests are listed")
    rows = await session.store.follow_page(frame.user, frame.kind, frame.offset,
                                           frame.limit + 1)
    items = [FollowEntry(follow=r, approval=a) for r, a in rows[: frame.limit]]
    return FollowItems(id=frame.id, user=frame.user, kind=frame.kind, items=items,
                       more=len(rows) > frame.limit)


# --- social: posts -----------------------------------------------------------------------


@HANDLERS.on(PostPut)
async def post_put(session: Session, frame: PostPut) -> Answer:
    user = acting_account(session)
    post = social.open_post(frame.record)  # malformed | bad_signature
    if post.author != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a post must be authored by the caller")
    return Later(
        session.store.put_post(user, post.id, frame.record, isinstance(post, social.Post)),
        lambda _: Ok(id=frame.id),
    )


@HANDLERS.on(Feed)
async def feed(session: Session, frame: Feed) -> Answer:
    user = acting_account(session)
    records = await session.store.feed_page(user, frame.authors, frame.before,
                                            frame.limit + 1)
    return FeedItems(id=frame.id, records=records[: frame.limit],
                     more=len(records) > frame.limit)


# --- social: comments and reactions ------------------------------------------------------


@HANDLERS.on(CommentPut)
async def comment_put(session: Session, frame: CommentPut) -> Answer:
    user = acting_account(session)
    comment = social.open_comment(frame.record)  # malformed | bad_signature
    if comment.author != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a comment must be authored by the caller")
    return Later(
        session.store.put_comment(comment.post_id, comment.post_author, comment.id,
                                  frame.record),
        lambda _: Ok(id=frame.id),
    )


@HANDLERS.on(ReactPut)
async def react_put(session: Session, frame: ReactPut) -> Answer:
    user = acting_account(session)
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


@HANDLERS.on(PostExtrasReq)
async def post_extras(session: Session, frame: PostExtrasReq) -> Answer:
    check_authenticated(session)
    counts = await session.store.post_extras(frame.post_ids)
    return PostExtras(id=frame.id, items=[
        PostExtra(post_id=p, comments=n, reactions=r)
        for p, (n, r) in zip(frame.post_ids, counts, strict=True)])


@HANDLERS.on(CommentsReq)
async def comments(session: Session, frame: CommentsReq) -> Answer:
    check_authenticated(session)
    records = await session.store.comment_page(frame.post_id, frame.before, frame.limit + 1)
    return CommentItems(id=frame.id, records=records[: frame.limit],
                        more=len(records) > frame.limit)


# Larger features keep their handlers in modules of their own; importing one registers it.
