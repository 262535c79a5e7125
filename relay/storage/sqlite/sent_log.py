"""SQLite: the dedupe keys of the latest sends, appended, and folded into `sent` later.

Every stored send leaves a row in `sent` (its dedupe key, relay/storage/dedupe.py), and
that key is a random 48-byte digest: inserted into `sent`'s b-tree at each commit, each
one dirtied a leaf page of its own — 4 KiB written to the WAL and again at the
checkpoint for a 70-byte row. At saturation that was half the relay's disk writes and,
on a machine with slow commits, half its throughput (no `sent` rows at all: 2× the msgs/s;
docs/performance.md).

So a send's key goes to `sent_log` instead, a plain table appended in the order keys
were stored (a commit of a few hundred sends fills a few pages), and to :attr:`SentLog.keys`,
the writer's copy of every row of it, where a retry is looked up first. Once the log holds
:data:`FOLD_AT` keys (or its oldest is :data:`FOLD_AFTER_MS` old), a *fold* moves those
keys into `sent` in key order, from the writer's copy (no scan of the log): one
:data:`RANGES`-th of the key space per step, sorted, so that they share leaf pages; then
deletes them from the log, the oldest :data:`DELETE_ROWS` at a time (new keys kept
arriving behind them), and the writer forgets them. One step per write transaction, at
most every :data:`STEP_EVERY_MS`: no step holds the writer long (a few ms; the whole
fold at once took 0.15 s with an empty `sent`, more with a full one).

Crash safety: the log and `sent` change only inside the writer's transactions, and the
writer's copy only after the transaction committed (:meth:`Tx.after_commit`): a rolled
back transaction leaves both as they were. A relay that stops mid-fold reads the whole
log back when it opens and folds it again from the first range; a key folded twice is
ignored (``INSERT OR IGNORE``): a key is in `sent` or in the log, both with the same row.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ..records import Stored
from .sent_filter import SentFilter

__all__ = ["SentLog", "Fold", "FOLD_AT", "FOLD_AFTER_MS", "STEP_EVERY_MS", "RANGES",
           "DELETE_ROWS", "INSERT_SENT_LOG"]

INSERT_SENT_LOG: Final = "INSERT INTO sent_log (sender, msg_id, seq, at) VALUES (?, ?, ?, ?)"
FOLD_AT: Final = 50_000  # keys in the log that start a fold (~13 MiB of the writer's memory)
FOLD_AFTER_MS: Final = 3600 * 1000  # …or the age of its oldest key that does
STEP_EVERY_MS: Final = 50  # a fold step at most this often
RANGES: Final = 64  # insert steps per fold, by the key's first byte (4 values each)
_SHIFT: Final = 8 - (RANGES.bit_length() - 1)  # a key's range: its first byte >> _SHIFT
DELETE_ROWS: Final = 4096  # log rows deleted per step, once they are all in `sent`
_FOLD: Final = "INSERT OR IGNORE INTO sent (sender, msg_id, seq, at) VALUES (?, ?, ?, ?)"
_FORGET: Final = ("DELETE FROM sent_log WHERE rowid IN"
                  " (SELECT rowid FROM sent_log ORDER BY rowid LIMIT ?)")

Key = tuple[bytes, bytes]  # the (sender, msg_id) columns of a row: dedupe_row's digest
Row = tuple[bytes, bytes, int, int]


@dataclass(slots=True)
class _Fold:
    count: int  # the first ``count`` rows of the log (and of SentLog.keys) are folded
    ranges: list[list[Row]]  # their rows by the key's first byte, RANGES of them
    step: int = 0  # the next range to insert; RANGES and on: deleting
    deleted: int = 0  # rows of the count deleted from the log


class SentLog:
    """The writer's side of `sent_log` (its thread only): every row, and the fold."""

    def __init__(self, fold_at: int = FOLD_AT, fold_after_ms: int = FOLD_AFTER_MS,
                 step_every_ms: int = STEP_EVERY_MS) -> None:
        # every row of sent_log, in rowid order (a dict keeps insertion order)
        self.keys: dict[Key, Stored] = {}
        # the same rows by range, for the next fold (kept as they come: no pass over
        # every key when a fold starts, which held the writer 40 ms at 50,000 keys)
        self._ranges: list[list[Row]] = [[] for _ in range(RANGES)]
        self.fold_at = fold_at
        self.fold_after_ms = fold_after_ms
        self.step_every_ms = step_every_ms
        self._fold: _Fold | None = None
        self._last_step = 0
        # a Bloom filter of the keys in `sent` (sent_filter.py), and its build's last step
        self.filter = SentFilter()
        self._last_build = 0

    def load(self, conn: sqlite3.Connection) -> None:
        """The log as it is on disk (at open; a fold it was in starts over)."""
        self.keys = {}
        self._ranges = [[] for _ in range(RANGES)]
        self._fold = None
        self.filter.reset()
        self.added((bytes(s), bytes(m), seq, at) for s, m, seq, at in conn.execute(
            "SELECT sender, msg_id, seq, at FROM sent_log ORDER BY rowid"))

    def added(self, rows: Iterable[Row]) -> None:
        """Rows a committed transaction appended (INSERT_SENT_LOG's, in its order)."""
        keys, ranges = self.keys, self._ranges
        for row in rows:
            sender, msg_id, seq, at = row
            keys[sender, msg_id] = Stored(seq, at)
            ranges[sender[0] >> _SHIFT].append(row)

    def step(self, conn: sqlite3.Connection, now: int) -> Fold | None:
        """In a write transaction: the next fold step, if one is due; what to apply to
        this state once the transaction commits (``.committed()``), or None. (And the
        next step of the filter's build, if one is due.)"""
        if now - self._last_build >= self.step_every_ms and self.filter.step(conn):
            self._last_build = now
        if now - self._last_step < self.step_every_ms:
            return None
        fold = self._fold
        if fold is None:
            if not self.keys or (len(self.keys) < self.fold_at and now - next(
                    iter(self.keys.values())).at < self.fold_after_ms):
                return None
            fold = _Fold(len(self.keys), self._ranges)
        if fold.step < RANGES:
            rows = sorted(fold.ranges[fold.step])
            if rows:
                conn.executemany(_FOLD, rows)
                self.filter.folded([row[0] for row in rows])
            change = (1, 0)
        else:
            n = min(DELETE_ROWS, fold.count - fold.deleted)
            conn.execute(_FORGET, (n,))
            change = (0, n)
        return Fold(self, fold, change, now)

    def _committed(self, fold: _Fold, change: tuple[int, int], now: int) -> None:
        self._last_step = now
        if self._fold is None:  # a fold began: the keys that come now are the next one's
            self._ranges = [[] for _ in range(RANGES)]
        self._fold = fold
        if change[0]:
            fold.ranges[fold.step] = []
        fold.step += change[0]
        fold.deleted += change[1]
        if fold.deleted == fold.count:  # all in `sent`, none in the log: forget them
            for key in list(itertools.islice(self.keys, fold.count)):
                del self.keys[key]
            self._fold = None


@dataclass(slots=True)
class Fold:
    """A fold step taken in a transaction, applied to the writer's state once it commits."""

    log: SentLog
    fold: _Fold
    change: tuple[int, int]  # (ranges inserted, rows deleted)
    now: int

    def committed(self) -> None:
        self.log._committed(self.fold, self.change, self.now)
