"""Storage contract: retention, the probe, stats and the lifecycle of the writer."""

from __future__ import annotations

import asyncio
import os

import pytest

from tenchat.common.errors import ProtocolError
from tenchat.relay.storage import AuditEntry, Store
from tests.support.wsclient import async_test

from .conftest import Clock, StoreOpener

DAY = 24 * 3600 * 1000


@async_test
async def test_retention_deletes_old_rows_oldest_first(store: Store, clock: Clock) -> None:
    alice, bob = os.urandom(32), os.urandom(32)
    old = [await store.enqueue(bob, alice, os.urandom(16), b"old") for _ in range(3)]
    await store.blob_begin(alice, os.urandom(32), 10, 1000)
    await store.audit_insert(AuditEntry(clock.now, None, "auth_failed", None))
    clock.now += DAY
    new = await store.enqueue(bob, alice, os.urandom(16), b"new")
    fresh_blob = os.urandom(32)
    await store.blob_begin(alice, fresh_blob, 10, 1000)
    await store.audit_insert(AuditEntry(clock.now, None, "auth_failed", None))
    swept = await store.retention_sweep(clock.now, clock.now, 2, clock.now)
    assert (swept.messages, swept.group_entries, len(swept.uploads), swept.audit) == (2, 0, 1, 1)
    assert swept.uploads[0][0] == alice
    swept = await store.retention_sweep(clock.now, clock.now, 2, 0)  # 0: audit kept
    assert (swept.messages, swept.audit) == (1, 0)
    assert [d.seq for d in await store.pending(bob, 0, 10)] == [new.seq]
    assert old[0].seq < new.seq
    assert await store.blob_upload(alice, fresh_blob) == 10
    assert len(await store.audit_log(10)) == 1
    nothing = await store.retention_sweep(0, 0, 10)
    assert (nothing.messages, nothing.uploads, nothing.audit) == (0, [], 0)


@async_test
async def test_probe_stats_and_queue_depth(store: Store) -> None:
    await store.probe()
    assert await store.stats() == {"messages": 0, "group_entries": 0, "blobs": 0,
                                   "blob_bytes": 0, "uploads": 0}
    futs = [store.set_privacy(os.urandom(32), True) for _ in range(5)]
    assert store.write_queue_depth >= 4  # queued, not yet taken by the writer
    await asyncio.gather(*futs)
    assert store.write_queue_depth == 0
    assert store.last_write_error is None


@async_test
async def test_close_commits_what_is_queued_then_refuses(make_store: StoreOpener) -> None:
    batches: list[tuple[int, bool]] = []
    async with make_store() as store:
        store.on_batch = lambda _secs, ops, ok: batches.append((ops, ok))
        alice, bob = os.urandom(32), os.urandom(32)
        futs = [store.enqueue(bob, alice, os.urandom(16), b"x") for _ in range(10)]
        await store.close()
        assert all(f.done() and f.exception() is None for f in futs)
        with pytest.raises(ProtocolError) as info:
            store.enqueue(bob, alice, os.urandom(16), b"x")
        assert info.value.code == "unavailable"
        await store.open()
        assert len(await store.pending(bob, 0, 100)) == 10  # durable
    assert sum(ops for ops, _ in batches) == 10 and all(ok for _, ok in batches)
