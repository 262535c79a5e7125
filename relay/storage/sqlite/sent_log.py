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
:data:`FOLD_AT` keys (or its oldest is :data:`FOLD_AFTER_MS` old), a *fold* moves it into
`sent` in key order, one sixteenth of the key space per step, one step per write
transaction at most every :data:`STEP_EVERY_MS`: a step inserts its range's keys sorted,
so they share leaf pages, and no step holds the writer long. The last step deletes the
folded rows (a prefix of the log by rowid: new keys kept arriving behind it) and the
writer forgets them.

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

__all__ = ["SentLog", "FOLD_AT", "FOLD_AFTER_MS", "STEP_EVERY_MS", "INSERT_SENT_LOG"]

INSERT_SENT_LOG: Final = "INSERT INTO sent_log (sender, msg_id, seq, at) VALUES (?, ?, ?, ?)"
FOLD_AT: Final = 50_000  # keys in the log that start a fold (~13 MiB of the writer's memory)
FOLD_AFTER_MS: Final = 3600 * 1000  # …or the age of its oldest key that does
STEP_EVERY_MS: Final = 50  # a fold step at most this often (a quiet relay's commits: µs)
_RANGES: Final = 16  # steps per fold: the first byte of the key, 16 values at a time
_FOLD_STEP: Final = (
    "INSERT OR IGNORE INTO sent (sender, msg_id, seq, at) SELECT sender, msg_id, seq, at"
    " FROM sent_log WHERE rowid <= ? AND sender >= ? AND sender < ? ORDER BY sender, msg_id"
)

Key = tuple[bytes, bytes]  # the (sender, msg_id) columns of a row: dedupe_row's digest


@dataclass(slots=True)
class _Fold:
    last_rowid: int  # the log's rows up to here are being folded
    count: int  # how many (the first ``count`` of SentLog.keys)
    step: int = 0  # the next range


class SentLog:
    """The writer's side of `sent_log` (its thread only): every row, and the fold."""

    def __init__(self, fold_at: int = FOLD_AT, fold_after_ms: int = FOLD_AFTER_MS,
                 step_every_ms: int = STEP_EVERY_MS) -> None:
        # every row of sent_log, in rowid order (a dict keeps insertion order)
        self.keys: dict[Key, Stored] = {}
        self.fold_at = fold_at
        self.fold_after_ms = fold_after_ms
        self.step_every_ms = step_every_ms
        self._fold: _Fold | None = None
        self._last_step = 0

    def load(self, conn: sqlite3.Connection) -> None:
        """The log as it is on disk (at open; a fold it was in starts over)."""
        self.keys = {(bytes(s), bytes(m)): Stored(seq, at) for s, m, seq, at in conn.execute(
            "SELECT sender, msg_id, seq, at FROM sent_log ORDER BY rowid")}
        self._fold = None

    def added(self, rows: Iterable[tuple[bytes, bytes, int, int]]) -> None:
        """Rows a committed transaction appended (INSERT_SENT_LOG's, in its order)."""
        keys = self.keys
        for sender, msg_id, seq, at in rows:
            keys[sender, msg_id] = Stored(seq, at)

    def step(self, conn: sqlite3.Connection, now: int) -> Fold | None:
        """At the start of a write transaction (before it appends: the log on disk is then
        :attr:`keys`): the next fold step, if one is due; what to apply once it commits
        (``.committed()``), or None."""
        if now - self._last_step < self.step_every_ms:
            return None
        fold = self._fold
        if fold is None:
            if not self.keys or (len(self.keys) < self.fold_at and now - next(
                    iter(self.keys.values())).at < self.fold_after_ms):
                return None
            last = conn.execute("SELECT max(rowid) FROM sent_log").fetchone()[0]
            fold = _Fold(last, len(self.keys))
        lo = bytes([fold.step * 256 // _RANGES])
        # the last range has no upper end; a sender column is 32 bytes, so b"\xff" * 33
        # is above every one
        hi = bytes([(fold.step + 1) * 256 // _RANGES]) if fold.step < _RANGES - 1 \
            else b"\xff" * 33
        conn.execute(_FOLD_STEP, (fold.last_rowid, lo, hi))
        done = fold.step == _RANGES - 1
        if done:
            conn.execute("DELETE FROM sent_log WHERE rowid <= ?", (fold.last_rowid,))
        return Fold(self, fold, now, done)

    def _committed(self, fold: _Fold, now: int, done: bool) -> None:
        self._last_step = now
        if not done:
            self._fold = _Fold(fold.last_rowid, fold.count, fold.step + 1)
            return
        self._fold = None
        # the folded rows are the first `count` keys (rows only ever join at the end)
        for key in list(itertools.islice(self.keys, fold.count)):
            del self.keys[key]


@dataclass(slots=True)
class Fold:
    """A fold step taken in a transaction, applied to the writer's state once it commits."""

    log: SentLog
    fold: _Fold
    now: int
    done: bool

    def committed(self) -> None:
        self.log._committed(self.fold, self.now, self.done)
