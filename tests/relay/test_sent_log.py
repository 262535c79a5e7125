"""The SQLite relay's dedupe log (relay/storage/sqlite/sent_log.py), on real files: a
retry is recognised whether its key is still in `sent_log`, being folded, or in `sent`;
a fold moves every key once and leaves the ones that came meanwhile; a crash (a
transaction rolled back, a relay reopened mid-fold) loses and duplicates nothing; the
Bloom filter in front of `sent` never misses a key that is there."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tenchat.relay.storage import SQLiteStore
from tenchat.relay.storage.records import Stored
from tenchat.relay.storage.sqlite.schema import MIGRATIONS
from tenchat.relay.storage.sqlite.sent_filter import BUILD_ROWS, Bloom, SentFilter
from tenchat.relay.storage.sqlite.sent_log import RANGES, SentLog
from tests.relay.storage.conftest import T0, Clock
from tests.support.wsclient import async_test


def relay_db(path: Path) -> sqlite3.Connection:
    """A relay database at the current schema (the relay's own migrations), in autocommit."""
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS:
        db.executescript(migration)
    return db


def rows(path: Path, table: str) -> set[tuple[bytes, bytes, int, int]]:
    with sqlite3.connect(path) as db:
        return {(bytes(s), bytes(m), q, a) for s, m, q, a in db.execute(
            f"SELECT sender, msg_id, seq, at FROM {table}")}


def open_store(path: Path, clock: Clock, fold_at: int) -> SQLiteStore:
    store = SQLiteStore(path, sync="normal", clock=clock)
    store._sent_log.fold_at = fold_at
    return store


async def send_each(store: SQLiteStore, clock: Clock, to: bytes, sender: bytes,
                    ids: list[bytes]) -> dict[bytes, Stored]:
    """Send each id, 60 ms apart (past STEP_EVERY_MS: a fold step may come with each)."""
    first = {}
    for msg in ids:
        clock.now += 60
        first[msg] = await store.enqueue(to, sender, msg, b"x")
    return first


@async_test
async def test_a_retry_is_recognised_before_during_and_after_a_fold(tmp_path: Path) -> None:
    path, clock = tmp_path / "relay.sqlite3", Clock()
    store = open_store(path, clock, fold_at=40)
    await store.open()
    try:
        alice, bob = os.urandom(32), os.urandom(32)
        ids = [os.urandom(16) for _ in range(100)]
        first: dict[bytes, Stored] = {}
        for i, msg in enumerate(ids):
            clock.now += 60  # past STEP_EVERY_MS: a fold step may come with each send
            first[msg] = await store.enqueue(bob, alice, msg, b"x%d" % i)
            # every key sent so far, retried now, gets its first answer: wherever it is
            for old in ids[: i + 1 : 7]:
                assert await store.enqueue(bob, alice, old, b"again") == first[old]
        logged, folded = rows(path, "sent_log"), rows(path, "sent")
        assert len(logged | folded) == 100  # each key once (the same row if in both)
        assert folded, "40 keys started a fold and 16 steps ended it"
        assert {s.seq for s in first.values()} == {r[2] for r in logged | folded}
        assert len(store._sent_log.keys) == len(logged)  # the writer's copy is the log
        assert len(await store.pending(bob, 0, 1000)) == 100  # no retry was queued
    finally:
        await store.close()


@async_test
async def test_a_relay_reopened_mid_fold_folds_again_and_loses_nothing(tmp_path: Path) -> None:
    path, clock = tmp_path / "relay.sqlite3", Clock()
    store = open_store(path, clock, fold_at=30)
    await store.open()
    alice, bob = os.urandom(32), os.urandom(32)
    ids = [os.urandom(16) for _ in range(60)]
    # 30 start a fold; the 20 sends after them take 20 of its steps
    first = await send_each(store, clock, bob, alice, ids[:50])
    await store.close()  # (a stop mid-fold: some ranges in `sent`, all still in the log)
    assert 0 < len(rows(path, "sent")) < 30 and len(rows(path, "sent_log")) == 50

    store = open_store(path, clock, fold_at=30)
    await store.open()
    try:
        assert len(store._sent_log.keys) == 50  # read back whole
        # the fold starts over (INSERT OR IGNORE) and goes on
        first |= await send_each(store, clock, bob, alice, ids[50:])
        for _ in range(RANGES + 1):  # …to its end: every range, then the delete
            clock.now += 60
            await store.enqueue(bob, alice, ids[0], b"again")
        assert {r[2] for r in rows(path, "sent")} >= {first[m].seq for m in ids[:50]}
        assert len(rows(path, "sent") | rows(path, "sent_log")) == 60
        for msg in ids:
            assert await store.enqueue(bob, alice, msg, b"again") == first[msg]
    finally:
        await store.close()


def test_a_rolled_back_step_changes_nothing_and_is_taken_again(tmp_path: Path) -> None:
    db = relay_db(tmp_path / "x.sqlite3")
    log = SentLog(fold_at=3)
    appended = [(os.urandom(32), os.urandom(16), seq, T0) for seq in range(1, 5)]
    db.executemany("INSERT INTO sent_log VALUES (?, ?, ?, ?)", appended)
    log.added(appended)

    db.execute("BEGIN")
    step = log.step(db, T0)
    assert step is not None
    db.execute("ROLLBACK")  # the transaction failed: its step is not applied…
    assert rows(tmp_path / "x.sqlite3", "sent") == set()
    db.execute("BEGIN")  # …and is due again, the first range first
    steps, now = 0, T0 + 1
    while (step := log.step(db, now)) is not None and steps < 100:  # committed steps
        db.execute("COMMIT")
        step.committed()
        steps += 1
        now += 60
        db.execute("BEGIN")
    db.execute("COMMIT")
    assert steps == RANGES + 1  # a range per step, then one delete (4 rows < DELETE_ROWS)
    assert rows(tmp_path / "x.sqlite3", "sent") == set(appended)
    assert rows(tmp_path / "x.sqlite3", "sent_log") == set() and log.keys == {}


@pytest.mark.parametrize("quiet", [True, False])
def test_a_fold_is_due_at_fold_at_keys_or_after_an_hour(tmp_path: Path, quiet: bool) -> None:
    db = relay_db(tmp_path / "x.sqlite3")
    log = SentLog(fold_at=1000)
    assert log.step(db, T0) is None  # an empty log
    log.added([(os.urandom(32), os.urandom(16), 1, T0)])
    assert log.step(db, T0 + 60_000) is None  # one key, a minute old
    later = T0 + log.fold_after_ms if quiet else T0 + 60_000
    if not quiet:
        log.fold_at = 1
    assert log.step(db, later) is not None


# --- the Bloom filter of `sent` (relay/storage/sqlite/sent_filter.py) ----------------------

def test_the_bloom_filter_has_no_false_negatives_and_few_false_positives() -> None:
    bloom = Bloom(10_000)
    keys = [os.urandom(32) for _ in range(10_000)]
    for key in keys:
        bloom.add(key)
    assert all(key in bloom for key in keys)
    assert not bloom.full and bloom.count == 10_000
    strangers = sum(os.urandom(32) in bloom for _ in range(100_000))
    assert strangers < 1_000  # < 1 % at capacity (16 bits a key, 4 probes: ~0.25 %)
    bloom.add(keys[0])
    assert bloom.full  # one more than it was sized for


def fold_rows(db: sqlite3.Connection, n: int) -> list[tuple[bytes, bytes, int, int]]:
    rows = [(os.urandom(32), os.urandom(16), seq, T0) for seq in range(n)]
    db.execute("BEGIN")
    db.executemany("INSERT INTO sent VALUES (?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    return rows


def build(sent: SentFilter, db: sqlite3.Connection) -> int:
    steps = 0
    while sent.step(db):
        steps += 1
        assert steps < 1000
    return steps


def test_the_filter_is_built_from_sent_a_step_at_a_time_and_holds_what_comes_meanwhile(
        tmp_path: Path) -> None:
    db = relay_db(tmp_path / "x.sqlite3")
    before = fold_rows(db, 2 * BUILD_ROWS + 10)
    sent = SentFilter()
    assert sent.may_hold(os.urandom(32))  # not ready: every key is looked up
    assert sent.step(db)  # the first BUILD_ROWS keys
    assert sent.ready is None
    during = fold_rows(db, 50)  # folded mid-build: ahead of the cursor or behind it…
    sent.folded([row[0] for row in during])
    assert build(sent, db) == 2  # …the rest of the scan, then nothing more to do
    assert sent.ready is not None
    assert all(sent.may_hold(row[0]) for row in before + during)
    assert sum(sent.may_hold(os.urandom(32)) for _ in range(10_000)) < 100
    after = fold_rows(db, 10)
    sent.folded([row[0] for row in after])
    assert all(sent.may_hold(row[0]) for row in after)


def test_a_filter_too_small_is_built_again_twice_as_large_and_answers_meanwhile(
        tmp_path: Path) -> None:
    db = relay_db(tmp_path / "x.sqlite3")
    rows = fold_rows(db, 3 * BUILD_ROWS)
    sent = SentFilter()
    sent.start(BUILD_ROWS)  # sized for a third of what `sent` holds: starts over, larger
    build(sent, db)
    ready = sent.ready
    assert ready is not None and ready.capacity >= 2 * BUILD_ROWS
    assert all(sent.may_hold(row[0]) for row in rows)
    # filled past its capacity by folds: a new build starts; the full one answers meanwhile
    more = fold_rows(db, ready.capacity - ready.count + 1)
    sent.folded([row[0] for row in more])
    assert ready.full
    assert sent.step(db) and sent.ready is ready
    in_it = ready.count
    during = fold_rows(db, 10)  # folded while the new one is built: added to both
    sent.folded([row[0] for row in during])
    assert all(sent.may_hold(row[0]) for row in more + during)
    build(sent, db)
    assert sent.ready is not ready and sent.ready is not None
    assert sent.ready.capacity == 2 * in_it
    assert all(sent.may_hold(row[0]) for row in rows + more + during)


@async_test
async def test_a_reopened_relay_recognises_retries_in_sent_before_and_after_its_filter(
        tmp_path: Path) -> None:
    path, clock = tmp_path / "relay.sqlite3", Clock()
    store = open_store(path, clock, fold_at=20)
    await store.open()
    alice, bob = os.urandom(32), os.urandom(32)
    ids = [os.urandom(16) for _ in range(30)]
    first = await send_each(store, clock, bob, alice, ids)  # 20 start a fold, 10 more sends
    for _ in range(RANGES + 2):  # to the fold's end: every range, then the delete
        clock.now += 60
        await store.enqueue(bob, alice, ids[-1], b"again")
    await store.close()
    assert len(rows(path, "sent")) >= 20

    store = open_store(path, clock, fold_at=1000)
    await store.open()
    try:
        log = store._sent_log
        assert log.filter.ready is None  # the writer's state is in this process (thread)
        assert await store.enqueue(bob, alice, ids[0], b"again") == first[ids[0]]
        clock.now += 60
        await store.enqueue(bob, alice, os.urandom(16), b"new")  # a step: `sent` is small
        assert log.filter.ready is not None
        for msg in ids:  # in `sent` or in the log: each one's first answer
            assert await store.enqueue(bob, alice, msg, b"again") == first[msg]
        assert len(await store.pending(bob, 0, 1000)) == 31
    finally:
        await store.close()
