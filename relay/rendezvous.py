"""Rendezvous slots for linking a device (docs/protocol.md §6E): a short-lived,
single-use mailbox of one opaque blob, held in memory (nothing durable: a lost slot
means the user starts linking again). Slot ids are derived from a secret the relay never
sees, so only the two devices know where to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from tenchat.common.errors import ErrorCode, ProtocolError

__all__ = ["Rendezvous", "SLOT_TTL", "MAX_BYTES"]

SLOT_TTL: Final = 600.0  # s a blob waits for its taker
MAX_BYTES: Final = 64 * 1024 * 1024  # all slots together
MAX_PER_OWNER: Final = 4  # slots one identity holds at once (a link needs one or two)


class Rendezvous:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # slot -> (expires, blob, the identity that left it)
        self._slots: dict[bytes, tuple[float, bytes, bytes]] = {}
        self._bytes = 0

    def _expire(self) -> None:
        now = self._clock()
        for slot in [s for s, (exp, _, _) in self._slots.items() if exp <= now]:
            self._bytes -= len(self._slots.pop(slot)[1])

    def put(self, slot: bytes, blob: bytes, owner: bytes) -> None:
        """Leave ``blob`` for one taker; forbidden if the slot holds one already (the
        first writer wins: a slot is never overwritten); quota_exceeded if ``owner``
        holds MAX_PER_OWNER slots already or the relay MAX_BYTES."""
        self._expire()
        if slot in self._slots:
            raise ProtocolError(ErrorCode.FORBIDDEN, "this rendezvous slot is taken")
        if sum(1 for _, _, o in self._slots.values() if o == owner) >= MAX_PER_OWNER:
            raise ProtocolError(ErrorCode.QUOTA_EXCEEDED, "too many link blobs of yours wait")
        if self._bytes + len(blob) > MAX_BYTES:
            raise ProtocolError(ErrorCode.QUOTA_EXCEEDED, "the relay holds too many link blobs")
        self._slots[slot] = (self._clock() + SLOT_TTL, blob, owner)
        self._bytes += len(blob)

    def take(self, slot: bytes) -> bytes | None:
        """The slot's blob, removed; None if empty or expired."""
        self._expire()
        item = self._slots.pop(slot, None)
        if item is None:
            return None
        self._bytes -= len(item[1])
        return item[1]
