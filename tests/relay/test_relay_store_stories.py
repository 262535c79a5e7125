"""The story store in-process: expiry on reads, the batched sweep through the expires_at
indexes, and the server's sweep deleting the story images' blob files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tenchat.common.errors import ProtocolError
from tenchat.common.stories import STORY_TTL_MS
from tenchat.relay.config import Config
from tenchat.relay.server import Server
from tenchat.relay.storage import MIGRATIONS, SQLiteStore
from tests.support.wsclient import async_test

T0 = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def _plans(sql: str, params: tuple[object, ...]) -> str:
    db = sqlite3.connect(":memory:")
    for migration in MIGRATIONS:
        for stmt in migration.split(";"):
            if stmt.strip():
                db.execute(stmt)
    return " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def test_story_sweep_and_reads_use_the_expiry_indexes() -> None:
    plan = _plans("DELETE FROM stories WHERE seq IN (SELECT seq FROM stories"
                  " WHERE expires_at <= ? LIMIT ?)", (1, 500))
    assert "stories_expiry" in plan and "SCAN stories" not in plan, plan
    plan = _plans("DELETE FROM blobs WHERE hash IN (SELECT hash FROM blobs"
                  " WHERE expires_at > 0 AND expires_at <= ? LIMIT ?) RETURNING hash", (1, 500))
    assert "blobs_expiry" in plan and "SCAN blobs" not in plan, plan
    plan = _plans("SELECT record FROM stories WHERE author IN (?) AND expires_at > ?"
                  " ORDER BY seq DESC LIMIT ?", (b"a", 1, 10))
    assert "SCAN stories" not in plan, plan


@async_test
async def test_expired_stories_are_never_read_and_sweep_in_small_batches(
        tmp_path: Path) -> None:
    clock = Clock()
    alice, bob = os.urandom(32), os.urandom(32)
    async with SQLiteStore(tmp_path / "relay.sqlite3", sync="normal", clock=clock) as store:
        blob = os.urandom(32)
        await store.blob_begin(alice, blob, 100, 10**9)
        await store.blob_commit(alice, blob, 100)
        ids = [os.urandom(16) for _ in range(5)]
        for i, story in enumerate(ids):
            await store.put_story(alice, story, T0 + 1000 * (i + 1), blob if i == 0 else None,
                                  b"record%d" % i)
        # someone else's blob can't be tied to one's story; nor can a past expiry be set
        with pytest.raises(ProtocolError) as info:
            await store.put_story(bob, os.urandom(16), T0 + 5000, blob, b"x")
        assert info.value.code == "not_found"
        with pytest.raises(ProtocolError) as info:
            await store.put_story(bob, os.urandom(16), T0, None, b"x")
        assert info.value.code == "expired"
        with pytest.raises(ProtocolError) as info:
            await store.put_story(bob, os.urandom(16), T0 + 2 * STORY_TTL_MS, None, b"x")
        assert info.value.code == "expired"
        assert len(await store.story_page(alice, [alice], 10)) == 5
        assert await store.blob_size(blob) == 100

        clock.now = T0 + 3500  # three of five expired: gone for readers before any sweep
        assert await store.story_page(alice, [alice], 10) == [b"record4", b"record3"]
        assert await store.blob_size(blob) is None  # the first story's image expired too
        with sqlite3.connect(tmp_path / "relay.sqlite3") as db:
            assert db.execute("SELECT count(*) FROM stories").fetchone() == (5,)

        # batches of two: each call deletes at most two stories, in its own transaction
        first = await store.sweep_stories(clock.now, 2)
        assert (first.stories, first.blobs) == (2, [blob])
        second = await store.sweep_stories(clock.now, 2)
        assert (second.stories, second.blobs) == (1, [])
        third = await store.sweep_stories(clock.now, 2)
        assert (third.stories, third.blobs) == (0, [])
    with sqlite3.connect(tmp_path / "relay.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM stories").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM blobs").fetchone() == (0,)


@async_test
async def test_server_sweep_deletes_blob_files_in_batches(tmp_path: Path) -> None:
    clock = Clock()
    config = Config(port=0, data=tmp_path / "data", sync="normal", sweep_batch=3)
    server = Server(config, clock=clock)
    await server.startup()
    try:
        alice = os.urandom(32)
        blobs = [os.urandom(32) for _ in range(7)]
        for i, blob in enumerate(blobs):
            path = server.blobs.path(blob)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"ciphertext")
            await server.store.blob_begin(alice, blob, 10, 10**9)
            await server.store.blob_commit(alice, blob, 10)
            await server.store.put_story(alice, os.urandom(16), T0 + 1000 + i, blob, b"r")
        keep = os.urandom(32)  # a chat attachment: no expiry, never swept
        server.blobs.path(keep).parent.mkdir(parents=True, exist_ok=True)
        server.blobs.path(keep).write_bytes(b"x")
        await server.store.blob_begin(alice, keep, 1, 10**9)
        await server.store.blob_commit(alice, keep, 1)
        assert await server.sweep_stories() == (0, 0)
        clock.now = T0 + STORY_TTL_MS
        assert await server.sweep_stories() == (7, 7)  # three batches: 3 + 3 + 1
        assert not any(server.blobs.path(b).exists() for b in blobs)
        assert server.blobs.path(keep).exists()
    finally:
        await server.shutdown()
