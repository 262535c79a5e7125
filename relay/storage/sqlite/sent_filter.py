"""SQLite: a Bloom filter of the dedupe keys in `sent`, so that a new send — nearly
every send — is known not to be a retry without a look-up in `sent`'s b-tree.

Why: at saturation that look-up (one statement per 400 sends, a b-tree descent per key)
was 14 % of the writer process's time, the serial path that bounds a relay's msgs/s
(docs/performance.md). A key the filter has never seen is in no row of `sent`; one it
may have seen (a retry, or a false positive: under 1 % at the filter's capacity) is
looked up as before.

No false negatives, ever (a retry missed would be a message queued twice):

- Until the filter is *ready*, every key is looked up in `sent`.
- A build scans `sent` in key order, :data:`BUILD_ROWS` keys a step, one step per write
  transaction at most every ``step_every_ms`` (as the fold's steps, sent_log.py), so no
  step holds the writer long; a relay opens with no filter and builds one (10 million keys,
  a busy week's, in ~2,500 steps: two minutes at 20 steps a second).
- Every key the fold inserts into `sent` is added as it is inserted, to the ready filter
  and to the one being built: a key inserted behind the scan's cursor is in it anyway. A
  fold rolled back leaves its keys in the filter: false positives only.
- Keys deleted from `sent` (the hourly prune of keys past the dedupe window) stay in the
  filter: false positives again. When the keys added to a filter pass its capacity, a new
  build starts, sized at twice what is in it; the old filter answers until the new one is
  ready. A build that finds more keys than it was sized for starts over at twice the size.

The keys are SHA-512 digests (relay/storage/dedupe.py): their bits are uniformly random
already, so a key's probe positions are slices of its `sender` column, not hashes of it.
Memory: :data:`BITS_PER_KEY` bits a key, rounded up to a power of two: at least 2 MiB
(:data:`MIN_CAPACITY` keys), at most 256 MiB (beyond ~130 million keys in a week the
false positives grow, and each costs a look-up, nothing more).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Final

__all__ = ["Bloom", "SentFilter", "BUILD_ROWS", "MIN_CAPACITY", "BITS_PER_KEY", "PROBES"]

BITS_PER_KEY: Final = 16  # at capacity, with PROBES probes: ~0.25 % false positives
PROBES: Final = 4  # (unrolled below: a key's probes are 4 slices of its first 16 bytes)
MIN_CAPACITY: Final = 1 << 20  # keys
_MAX_WIDTH: Final = 31  # 2**31 bits, 256 MiB; PROBES * _MAX_WIDTH <= 128 (16 bytes)
BUILD_ROWS: Final = 4096  # keys of `sent` scanned per build step (~5 ms)
_SCAN: Final = ("SELECT sender, msg_id FROM sent WHERE (sender, msg_id) > (?, ?)"
                " ORDER BY sender, msg_id LIMIT ?")


class Bloom:
    """A Bloom filter of uniformly random keys (at least 16 bytes)."""

    __slots__ = ("capacity", "count", "_bits", "_mask", "_width")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.count = 0  # keys added (a key added twice counts twice)
        width = min(_MAX_WIDTH, max(3, (capacity * BITS_PER_KEY - 1).bit_length()))
        self._width = width
        self._mask = (1 << width) - 1
        self._bits = bytearray(1 << (width - 3))

    def add(self, key: bytes) -> None:
        self.add_many((key,))

    def add_many(self, keys: Iterable[bytes]) -> None:
        bits, mask, width = self._bits, self._mask, self._width
        n = 0
        for key in keys:  # (the hot path of a fold: unrolled, ~1 µs a key)
            h = int.from_bytes(key[:16], "little")
            i = h & mask
            bits[i >> 3] |= 1 << (i & 7)
            h >>= width
            i = h & mask
            bits[i >> 3] |= 1 << (i & 7)
            h >>= width
            i = h & mask
            bits[i >> 3] |= 1 << (i & 7)
            i = (h >> width) & mask
            bits[i >> 3] |= 1 << (i & 7)
            n += 1
        self.count += n

    def __contains__(self, key: bytes) -> bool:
        bits, mask, width = self._bits, self._mask, self._width
        h = int.from_bytes(key[:16], "little")
        for _ in range(PROBES):
            i = h & mask
            if not bits[i >> 3] & (1 << (i & 7)):
                return False
            h >>= width
        return True

    @property
    def full(self) -> bool:
        return self.count > self.capacity


class SentFilter:
    """The writer's filter of `sent` (its thread only) and the build of the next one."""

    def __init__(self) -> None:
        self.ready: Bloom | None = None  # every key in `sent` is in it
        self._building: Bloom | None = None
        self._cursor: tuple[bytes, bytes] = (b"", b"")  # the last key scanned
        self.start(MIN_CAPACITY)

    def start(self, capacity: int) -> None:
        """Begin a build of a filter for ``capacity`` keys (the ready one, if any, stays)."""
        self._building = Bloom(capacity)
        self._cursor = (b"", b"")

    def reset(self) -> None:
        """No filter (a relay opening: `sent` is whatever is on the disk)."""
        self.ready = None
        self.start(MIN_CAPACITY)

    def may_hold(self, key: bytes) -> bool:
        """Might `sent` hold a row with this `sender` column? (True until ready.)"""
        ready = self.ready
        return ready is None or key in ready

    def folded(self, senders: Iterable[bytes]) -> None:
        """Keys being inserted into `sent` (the `sender` column of each row)."""
        senders = list(senders)
        for bloom in (self.ready, self._building):
            if bloom is not None:
                bloom.add_many(senders)

    def step(self, conn: sqlite3.Connection) -> bool:
        """The next build step, if a build is under way or due; whether it took one."""
        building = self._building
        if building is None:
            ready = self.ready
            if ready is None or not ready.full:
                return False
            self.start(2 * ready.count)  # (the prune's deletions are not counted)
            building = self._building
            assert building is not None
        rows = conn.execute(_SCAN, (*self._cursor, BUILD_ROWS)).fetchall()
        building.add_many([sender for sender, _ in rows])
        if building.full:  # more keys than it was sized for: again, twice as large
            self.start(2 * building.count)
        elif len(rows) < BUILD_ROWS:  # the end of `sent`
            self.ready, self._building = building, None
        else:
            sender, msg_id = rows[-1]
            self._cursor = (bytes(sender), bytes(msg_id))
        return True
