"""What a handler is, and the table of them a feature module exports.

A handler validates (raising ProtocolError with a wire code), then either returns its
answer, returns a :class:`Later` (writes: the answer is built when the commit resolves
the store's future, while the connection goes on reading), or returns None when it has
answered itself.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from tenchat.common.errors import ErrorCode, ProtocolError

from ..session import Later, Session

__all__ = ["Answer", "Handler", "HandlerTable", "merge", "rate_limited"]

Answer = msgspec.Struct | Later | None
Handler = Callable[[Session, Any], Awaitable[Answer]]

F = TypeVar("F", bound=Handler)


class HandlerTable(dict[type[msgspec.Struct], Handler]):
    """Request frame type → its handler, for one feature: ``@HANDLERS.on(Frame)``."""

    def on(self, frame_type: type[msgspec.Struct]) -> Callable[[F], F]:
        def register(fn: F) -> F:
            if frame_type in self:
                raise RuntimeError(f"two handlers of {frame_type.__name__}")
            self[frame_type] = fn
            return fn

        return register


def merge(*tables: HandlerTable) -> dict[type[msgspec.Struct], Handler]:
    """One table of the features' tables; a frame type handled twice is a bug."""
    merged: dict[type[msgspec.Struct], Handler] = {}
    for table in tables:
        if twice := merged.keys() & table.keys():
            raise RuntimeError(f"frames handled twice: {sorted(t.__name__ for t in twice)}")
        merged.update(table)
    return merged


def rate_limited(what: str, wait: float) -> ProtocolError:
    return ProtocolError(ErrorCode.RATE_LIMITED, f"{what}: retry in {math.ceil(wait)} s",
                         retry_after=max(1, math.ceil(wait * 1000)))
