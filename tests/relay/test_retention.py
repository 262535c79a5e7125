"""Retention deletes only what is old: undelivered messages and group log entries past
retention_days, unfinished uploads (row and partial file) past upload_expiry_hours —
in batches, with a clock the test moves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tenchat.relay.blobs import BlobFiles
from tenchat.relay.retention import DAY_MS, HOUR_MS, Retention
from tenchat.relay.storage import SQLiteStore

T0 = 1_800_000_000_000


@pytest.mark.asyncio
async def test_retention_deletes_only_old_rows_and_uploads(tmp_path: Path) -> None:
    await _retention(tmp_path)


async def _retention(tmp_path: Path) -> None:
    now = [T0]
    store = SQLiteStore(tmp_path / "relay.sqlite3", sync="normal", clock=lambda: now[0])
    blobs = BlobFiles(tmp_path / "blobs")
    blobs.open()
    await store.open()
    try:
        alice, bob = os.urandom(32), os.urandom(32)
        old = [await store.enqueue(bob, alice, os.urandom(16), b"old") for _ in range(25)]
        old_upload, new_upload = os.urandom(32), os.urandom(32)
        await store.blob_begin(alice, old_upload, 100, 1 << 30)
        await blobs.append(alice, old_upload, b"x" * 10)
        now[0] = T0 + 10 * DAY_MS
        mid = [await store.enqueue(bob, alice, os.urandom(16), b"mid") for _ in range(5)]
        await store.blob_begin(alice, new_upload, 100, 1 << 30)
        await blobs.append(alice, new_upload, b"y" * 10)
        # A partial file whose row is gone (a crash), made to look two days old.
        stray = blobs.partial(alice, os.urandom(32))
        stray.write_bytes(b"z")
        os.utime(stray, (T0 / 1000, T0 / 1000))

        retention = Retention(store, blobs, retention_days=30, upload_expiry_hours=24,
                              batch=10, clock=lambda: now[0])
        # Day 10: nothing is 30 days old; the first upload is 10 days old, the stray file
        # too; the second upload was just started.
        now[0] = T0 + 10 * DAY_MS + HOUR_MS
        report = await retention.run_once()
        assert (report.messages, report.uploads, report.stray_partials) == (0, 1, 1)
        assert await store.blob_upload(alice, old_upload) is None
        assert not blobs.partial(alice, old_upload).exists() and not stray.exists()
        assert await store.blob_upload(alice, new_upload) == 100
        assert await blobs.received(alice, new_upload) == 10
        assert len(await store.pending(bob, 0, 1000)) == 30

        # Day 31: the 25 old messages go (in batches of 10), the 5 from day 10 stay.
        now[0] = T0 + 31 * DAY_MS
        report = await retention.run_once()
        assert report.messages == 25
        assert report.uploads == 1  # the second upload, 21 days old now
        assert not blobs.partial(alice, new_upload).exists()
        assert [m.seq for m in await store.pending(bob, 0, 1000)] == [s.seq for s in mid]
        assert old[0].seq < mid[0].seq

        # retention_days = 0 keeps undelivered messages for good.
        now[0] = T0 + 400 * DAY_MS
        keep = Retention(store, blobs, retention_days=0, upload_expiry_hours=24, batch=10,
                         clock=lambda: now[0])
        report = await keep.run_once()
        assert report.total == 0
        assert len(await store.pending(bob, 0, 1000)) == 5
    finally:
        await store.close()
