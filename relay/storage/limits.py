"""The limits every storage backend enforces in its writes, set once for all of them (so
the backends can't drift on what a limit means, e.g. the per-sender share of a queue)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

__all__ = ["StoreLimits", "now_ms", "LINK_TTL_MS", "LINK_PER_OWNER"]

# The device-linking rendezvous (docs/protocol.md §6E): how long a blob waits for its
# taker, and how many one identity may leave at once (a link needs one or two).
LINK_TTL_MS: Final = 600_000
LINK_PER_OWNER: Final = 4


def now_ms() -> int:
    """The stores' default clock: the wall clock in milliseconds."""
    return time.time_ns() // 1_000_000


class StoreLimits:
    """The limit settings and the clock of a store (a backend's base class mixes it in)."""

    def _init_limits(self, *, otk_max: int = 500, queue_max: int = 0,
                     queue_bytes_max: int = 0, queue_share: int = 100,
                     reactions_max: int = 0, link_bytes_max: int = 64 * 1024 * 1024,
                     clock: Callable[[], int] = now_ms) -> None:
        self.otk_max = otk_max
        self.queue_max = queue_max  # messages queued per recipient; 0 = no limit
        self.queue_bytes_max = queue_bytes_max  # body bytes queued per recipient; 0 = no limit
        # The part (percent) of those one sender may fill: a sender past it gets
        # queue_share, so one sender can't fill a recipient's queue for everyone else.
        self.queue_share = queue_share
        self.share_max = -(-queue_max * queue_share // 100) if queue_share < 100 else 0
        self.share_bytes_max = queue_bytes_max * queue_share // 100 if queue_share < 100 else 0
        self.reactions_max = reactions_max  # reactions per author per post; 0 = no limit
        self.link_bytes_max = link_bytes_max  # all waiting link blobs together
        self._clock = clock
