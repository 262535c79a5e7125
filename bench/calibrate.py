"""The machine's own speed, measured beside the regression guard's runs (bench/baseline.py).

CI runs on whichever machine the submitting session had, and those differ: the same
commit measured 12,400 durable msgs/s (quick) on one and 7,000–8,000 on the next, whose
SQLite commits ran 2–5× slower and whose Python ran 1.3× slower. A baseline of
absolute figures cannot tell such a machine from a slow change. So the baseline records
two reference speeds of the machine it was taken on, and the check measures them again:

* ``python_ops_per_s`` — a pure-Python loop of calls, dict and list work, like the
  relay's and the clients' own code;
* ``sqlite_rows_per_s`` — the relay writer's shape: rows with a random 16-byte unique key
  and a 200-byte body, 64 per ``BEGIN IMMEDIATE … COMMIT``, WAL with
  ``synchronous=FULL`` (an fsync per commit), in a temporary directory where the
  benchmarks keep theirs.

Each is the best of :data:`WINDOWS` short windows (the least disturbed; ~1.5 s in all).
Nothing of tenchat runs here, so a slow change cannot slow its own yardstick.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

__all__ = ["measure", "best", "factor", "WINDOWS"]

WINDOWS = 3
WINDOW_S = 0.25
_BATCH = 64
_BODY = 200


def _python_ops(seconds: float) -> float:
    def step(d: dict[int, list[int]], i: int) -> int:
        bucket = d.setdefault(i & 63, [])
        bucket.append(i)
        if len(bucket) > 8:
            bucket.clear()
        return len(bucket)

    d: dict[int, list[int]] = {}
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(2000):
            step(d, i)
        n += 2000
    return n / elapsed


def _sqlite_rows(directory: Path, seconds: float) -> float:
    db = sqlite3.connect(directory / "calibrate.db", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS m (id INTEGER PRIMARY KEY, k BLOB UNIQUE,"
                   " body BLOB)")
        body = os.urandom(_BODY)
        n = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO m (k, body) VALUES (?, ?)",
                           [(os.urandom(16), body) for _ in range(_BATCH)])
            db.execute("COMMIT")
            n += _BATCH
        return n / elapsed
    finally:
        db.close()


def measure() -> dict[str, float]:
    """The machine's reference speeds now: the best of :data:`WINDOWS` windows each."""
    with tempfile.TemporaryDirectory(prefix="tenchat-calibrate-") as tmp:
        return {
            "python_ops_per_s": max(_python_ops(WINDOW_S) for _ in range(WINDOWS)),
            "sqlite_rows_per_s": max(_sqlite_rows(Path(tmp), WINDOW_S) for _ in range(WINDOWS)),
        }


def best(measured: list[dict[str, float]]) -> dict[str, float]:
    """Each reference speed at its best over several measurements (a baseline's: the
    machine's speed, as each measurement is already its least disturbed window)."""
    return {key: max(m[key] for m in measured) for key in measured[0]} if measured else {}


def factor(then: dict[str, float] | None, now: dict[str, float] | None) -> float:
    """How much slower this machine is than the baseline's, as a factor ≤ 1: the slowest
    of the reference speeds' ratios (now / then), never above 1 — a faster machine does
    not tighten the margins, a slower one widens them by as much as its slowest part.
    1 when either side was not measured (an older baseline)."""
    if not then or not now:
        return 1.0
    ratios = [now[key] / then[key] for key in then if key in now and then[key] > 0]
    return min([1.0, *ratios])
