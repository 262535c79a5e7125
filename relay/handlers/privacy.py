"""Handlers of privacy: the presence setting and blocks."""

from __future__ import annotations

from tenchat.common.frames import (
    Block,
    Ok,
    Privacy,
)

from ..session import Later, Session, check_authenticated
from .table import Answer, HandlerTable

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


@HANDLERS.on(Privacy)
async def privacy(session: Session, frame: Privacy) -> Answer:
    user = check_authenticated(session)

    def answer(_: None) -> Ok:
        session.hub.set_hidden(user, frame.hide_presence)
        return Ok(id=frame.id)

    return Later(session.store.set_privacy(user, frame.hide_presence), answer)


@HANDLERS.on(Block)
async def block(session: Session, frame: Block) -> Answer:
    user = check_authenticated(session)
    def answer(_: None) -> Ok:
        if frame.blocked:
            session.hub.revoke(user, frame.user)  # a blocked contact sees no presence
        return Ok(id=frame.id)

    return Later(session.store.set_block(user, frame.user, frame.blocked), answer)
