"""Typing shared by the scenarios that wait for a client's events (latency, notify)."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["EventPredicate"]


class EventPredicate(Protocol):
    """Whether a client event is the one awaited.

    A Protocol rather than ``Callable[[Any], bool]``: the scenarios pass lambdas that bind
    a loop value as a default argument (``lambda e, mid=sent.id: ...``), which mypy cannot
    infer against a one-argument Callable but does check against this call signature
    (one positional event in, bool out)."""

    def __call__(self, event: Any, /) -> bool: ...
