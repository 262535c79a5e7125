"""Handlers of groups: signed changes, posts, acks, the list and a group's history."""

from __future__ import annotations

import time

from tenchat.common import groups
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    GroupAck,
    GroupChangeReq,
    GroupDeliver,
    GroupHistory,
    GroupInfo,
    GroupList,
    Groups,
    GroupSend,
    GroupStored,
    Ok,
)

from ..session import Later, Session, acting_account, check_authenticated
from .table import Answer, HandlerTable

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


_member = acting_account  # a linked device acts for its account in groups


GROUP_HISTORY_PAGE = 256  # records per group_history answer, at most


@HANDLERS.on(GroupChangeReq)
async def group_change(session: Session, frame: GroupChangeReq) -> Answer:
    user = _member(session)
    change, _signed = groups.decode_signed(frame.record)  # malformed | bad_signature
    if change.actor != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a change must be made by the connection's user")
    return Later(
        session.store.group_change(change, frame.record),
        lambda st: GroupStored(id=frame.id, group=change.group, gseq=st.seq, at=st.at),
    )


@HANDLERS.on(GroupSend)
async def group_send(session: Session, frame: GroupSend) -> Answer:
    user = _member(session)
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


@HANDLERS.on(GroupAck)
async def group_ack(session: Session, frame: GroupAck) -> Answer:
    user = check_authenticated(session)
    member = _member(session)
    if member != user:  # a linked device moves its own cursor, not its account's
        return Later(session.store.device_group_ack(user, member, frame.group, frame.upto),
                     lambda _: Ok(id=frame.id))
    return Later(session.store.group_ack(user, frame.group, frame.upto), lambda _: Ok(id=frame.id))


@HANDLERS.on(GroupList)
async def group_list(session: Session, frame: GroupList) -> Answer:
    user = _member(session)
    return Groups(id=frame.id, groups=await session.store.group_summaries(user))


@HANDLERS.on(GroupInfo)
async def group_info(session: Session, frame: GroupInfo) -> Answer:
    user = _member(session)
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
