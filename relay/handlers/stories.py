"""Handlers of the story frames (docs/protocol.md §6C): publish a sealed story, read
the unexpired ones. The relay checks the author's signature and the expiry; it can't
read a story."""

from __future__ import annotations

from tenchat.common import stories
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Ok, StoriesReq, StoryItems, StoryPut

from ..session import Later, Session, acting_account
from .table import Answer, HandlerTable

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


@HANDLERS.on(StoryPut)
async def story_put(session: Session, frame: StoryPut) -> Answer:
    user = acting_account(session)
    sealed = stories.open_story(frame.record)  # malformed | bad_signature
    if sealed.author != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a story must be authored by the caller")

    def stored(new: bool) -> Ok:
        if new:  # not for a retry: its followers heard of it the first time
            session.hub.story_posted(user, sealed.id)
        return Ok(id=frame.id)

    return Later(
        session.store.put_story(user, sealed.id, sealed.expires_at, sealed.blob, frame.record),
        stored,
    )


@HANDLERS.on(StoriesReq)
async def stories_list(session: Session, frame: StoriesReq) -> Answer:
    user = acting_account(session)
    records = await session.store.story_page(user, frame.authors, frame.limit + 1)
    return StoryItems(id=frame.id, records=records[: frame.limit],
                      more=len(records) > frame.limit)
