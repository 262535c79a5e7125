"""Handlers of 1:1 messages: send, ack, subscribe, fetch, watch."""

from __future__ import annotations

import time

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    Ack,
    Deliver,
    Fetch,
    Messages,
    Ok,
    PresenceState,
    Send,
    Stored,
    Subscribe,
    Watch,
)

from ..session import Later, Session, Subscription, check_authenticated
from .table import Answer, HandlerTable, rate_limited

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


@HANDLERS.on(Send)
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


@HANDLERS.on(Ack)
async def ack(session: Session, frame: Ack) -> Answer:
    user = check_authenticated(session)
    return Later(session.store.ack(user, frame.seqs), lambda _: Ok(id=frame.id))


@HANDLERS.on(Subscribe)
async def subscribe(session: Session, frame: Subscribe) -> Answer:
    check_authenticated(session)
    await session.send(Ok(id=frame.id))
    if session.subscription is None:  # subscribing again changes nothing
        session.subscription = Subscription(session)
        session.subscription.start()
    return None


@HANDLERS.on(Fetch)
async def fetch(session: Session, frame: Fetch) -> Answer:
    user = check_authenticated(session)
    if frame.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "only one's own queue can be fetched")
    items = await session.store.pending(user, frame.after, frame.limit + 1)
    return Messages(id=frame.id, items=items[: frame.limit], more=len(items) > frame.limit)


@HANDLERS.on(Watch)
async def watch(session: Session, frame: Watch) -> Answer:
    """Presence is shown to contacts only: those the watched user has sent a 1:1 message
    to (and doesn't block). Others always look offline, until such a message."""
    user = check_authenticated(session)
    if wait := session.guards.watches.take(user):
        raise rate_limited("too many presence watch lists", wait)
    wanted = list(dict.fromkeys(frame.users))
    allowed = await session.store.contacts_of([u for u in wanted if u != user], user)
    allowed.add(user)
    online = session.hub.watch(session, [u for u in wanted if u in allowed],
                               [u for u in wanted if u not in allowed])
    return PresenceState(id=frame.id, online=online)
