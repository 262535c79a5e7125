"""Rate limits that hold over the sum of a cluster's nodes (issue 14).

One node keeps its token buckets in memory (relay/limits.py). Several nodes on one
PostgreSQL database must not each grant a whole bucket: an identity connected to three
nodes would get three times its limit. :class:`SharedBuckets` has the same ``take(key)``
as :class:`~.limits.UserBuckets`, but the bucket of each key lives in the database
(``Store.spend_limits``: an unlogged table, one UPSERT for every key due, every
``FLUSH`` seconds) and each node spends from it locally, without waiting:

- A node reports what it spent on a key once that reaches ``due`` tokens (an eighth of
  the burst on two nodes), and learns the bucket's cluster-wide balance in return —
  keys used lightly (almost every identity under the default limits) never touch the
  database at all.
- Between reports, a node may spend the balance it last learned (plus the refill
  since), or — while another node spends on the same key too (``shared``, which the
  database tells) — its share of it, balance ÷ nodes. A key it knows nothing of yet
  counts as a full bucket shared by every node.

A node never has more than ``2 × due`` tokens spent and not yet confirmed by the
database, so however stale its view, the sum over the nodes stays within the bucket up
to ``nodes × 2 × due``: half the burst (or, for a rate high beside its burst, 0.2 s of
the rate per node). The counts live
in an unlogged table: a database crash forgets them (every bucket full again), which
for a rate limit is harmless. A database out of reach leaves each node on what it
last knew (it goes on spending its share, not more).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .storage import Store

__all__ = ["SharedBuckets", "SharedLimits", "FLUSH"]

log = logging.getLogger("tenchat.relay.limits")

FLUSH: Final = 0.1  # seconds between reports of what this node spent (only keys due)
Clock = Callable[[], float]


@dataclass(slots=True)
class _Key:
    balance: float | None = None  # the cluster's tokens when last learned (None: never)
    at: float = 0.0  # when (this node's clock)
    shared: bool = False  # another node spends on this key too
    spent: float = 0.0  # spent here, not reported yet
    reporting: float = 0.0  # reported, answer not back yet
    used: float = 0.0  # when last spent here (to forget idle keys)


class SharedBuckets:
    """Token buckets of one ``kind`` (frames per identity, registrations per address…)
    shared by every node. ``nodes()``: how many nodes the cluster has now."""

    _PRUNE_AT: Final = 4096

    def __init__(self, kind: str, rate: float, burst: float, nodes: Callable[[], int],
                 clock: Clock = time.monotonic) -> None:
        self.kind = kind
        self.rate, self.burst = rate, burst
        self._nodes = nodes
        self._clock = clock
        self._keys: dict[bytes, _Key] = {}
        self._due: set[bytes] = set()
        self._prune_at = self._PRUNE_AT

    def due(self, nodes: int) -> float:
        """Tokens a node spends on a key before reporting them: an eighth of the burst
        on two nodes (burst / 4 / nodes), or a report's worth of the rate if more."""
        return max(1.0, self.burst / (4 * nodes), self.rate * FLUSH)

    def _available(self, k: _Key, now: float, nodes: int, due: float) -> float:
        """Tokens this node may still spend on the key now: its view of the bucket (or
        its share), and with other nodes never more than twice ``due`` not yet confirmed
        by the database — a view may be stale (another node spent since), and this
        bounds what a stale view lets through (a burst then spreads over a few reports,
        0.1 s each)."""
        if k.balance is None:  # unknown: a full bucket, every node's
            view = self.burst / nodes
        else:
            tokens = min(self.burst, k.balance + (now - k.at) * self.rate)
            view = tokens / max(2, nodes) if k.shared else tokens
        if nodes > 1:  # (alone, a view is never stale)
            view = min(view, 2 * due)
        return view - k.spent - k.reporting

    def take(self, key: bytes | str) -> float:
        """0.0 if a token was taken, else the seconds until one may be."""
        if not self.rate:
            return 0.0
        if isinstance(key, str):  # (an address)
            key = key.encode()
        now = self._clock()
        k = self._keys.get(key)
        if k is None:
            if len(self._keys) >= self._prune_at:
                self._prune(now)
            k = self._keys[key] = _Key()
        nodes = max(1, self._nodes())
        due = self.due(nodes)
        available = self._available(k, now, nodes, due)
        if available < 1.0:
            return max(FLUSH, (1.0 - available) / self.rate)
        k.spent += 1.0
        k.used = now
        if k.spent >= due:
            self._due.add(key)
        return 0.0

    def report(self) -> list[tuple[bytes, float]]:
        """The keys due and what was spent on each (now being reported)."""
        out = []
        for key in self._due:
            k = self._keys.get(key)
            if k is not None and k.spent:
                out.append((key, k.spent))
                k.reporting += k.spent
                k.spent = 0.0
        self._due.clear()
        return out

    def learned(self, key: bytes, spent: float, balance: float | None, shared: bool,
                at: float) -> None:
        """The database's answer to a report (balance None: the report failed; what it
        carried is spent again here, to report next time)."""
        k = self._keys.get(key)
        if k is None:
            return
        k.reporting -= spent
        if balance is None:
            k.spent += spent
            self._due.add(key)
            return
        k.balance, k.shared, k.at = balance, shared, at

    def _prune(self, now: float) -> None:
        """Forget keys idle long enough for any bucket to be full again."""
        idle = self.burst / self.rate if self.rate else 0.0
        self._keys = {key: k for key, k in self._keys.items()
                      if now - k.used < idle or k.reporting or key in self._due}
        self._prune_at = max(self._PRUNE_AT, 2 * len(self._keys))

    def __len__(self) -> int:
        return len(self._keys)


class SharedLimits:
    """This node's shared buckets and the task reporting them (every ``FLUSH`` s, one
    statement for all kinds, only when some key is due)."""

    def __init__(self, store: Store, node: str, clock: Clock = time.monotonic) -> None:
        self.store = store
        self.node = node
        self._clock = clock
        self.kinds: dict[str, SharedBuckets] = {}
        self.nodes: Callable[[], int] = lambda: 1  # set from the bus (relay/cluster.py)
        self._task: asyncio.Task[None] | None = None
        self.reports = 0  # statements sent (tests, metrics)
        self._failing = False

    def buckets(self, kind: str, rate: float, burst: float) -> SharedBuckets:
        made = self.kinds[kind] = SharedBuckets(kind, rate, burst, lambda: self.nodes(),
                                                self._clock)
        return made

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shared-limits")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH)
            await self.flush()

    async def flush(self) -> None:
        rows: list[tuple[str, bytes, float, float, float]] = []
        for kind, buckets in self.kinds.items():
            rows.extend((kind, key, buckets.rate, buckets.burst, spent)
                        for key, spent in buckets.report())
        if not rows:
            return
        at = self._clock()
        self.reports += 1
        answers: list[tuple[float | None, bool]]
        try:
            answers = list(await self.store.spend_limits(self.node, rows))
        except Exception as exc:  # the database out of reach: keep what was spent
            if not self._failing:
                self._failing = True
                log.warning("shared rate limits not reported (%s); each node goes on with "
                            "its share of what it last learned", exc)
            answers = [(None, False)] * len(rows)
        else:
            self._failing = False
        for (kind, key, _, _, spent), (balance, shared) in zip(rows, answers, strict=True):
            self.kinds[kind].learned(key, spent, balance, shared, at)
