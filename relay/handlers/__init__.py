"""The relay's request handlers: one module per feature, each exporting its table.

``HANDLERS`` merges the features' tables here, in one place, so what the relay serves
is read off this file (no registration by import side effect); ``dispatch`` finds a
frame's handler. A handler's shape is in :mod:`.table`.
"""

from __future__ import annotations

import msgspec

from tenchat.common.errors import ErrorCode, ProtocolError

from ..session import Session
from . import (
    blobs,
    connect,
    devices,
    groups,
    identities,
    messages,
    moderation,
    privacy,
    sealed,
    social,
    stories,
    wallets,
)
from .table import Answer, Handler, merge

__all__ = ["HANDLERS", "dispatch", "Answer", "Handler"]

HANDLERS = merge(
    connect.HANDLERS,
    identities.HANDLERS,
    messages.HANDLERS,
    groups.HANDLERS,
    privacy.HANDLERS,
    sealed.HANDLERS,
    blobs.HANDLERS,
    social.HANDLERS,
    stories.HANDLERS,
    wallets.HANDLERS,
    devices.HANDLERS,
    moderation.HANDLERS,
)


async def dispatch(session: Session, frame: msgspec.Struct) -> Answer:
    handler = HANDLERS.get(type(frame))
    if handler is None:  # a request type the relay decodes but does not serve (yet)
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unsupported frame {type(frame).__name__}")
    return await handler(session, frame)
