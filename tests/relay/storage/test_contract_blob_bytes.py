"""Storage contract: the bytes of blobs beside each store (relay.blobs.BlobStore) — files
under the data directory with SQLite, the database itself with PostgreSQL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tenchat.common.crypto.media import blob_hash
from tenchat.relay.blobs import BlobStore
from tenchat.relay.storage import Store
from tenchat.relay.storage.factory import blobs_for
from tests.support.wsclient import async_test


@pytest.fixture
def blobs(store: Store, tmp_path: Path) -> BlobStore:
    found = blobs_for(store, tmp_path / "blobs")
    found.open()
    return found


@async_test
async def test_upload_in_chunks_publish_and_read_ranges(blobs: BlobStore) -> None:
    alice = os.urandom(32)
    data = os.urandom(3000)
    blob = blob_hash(data)
    assert await blobs.received(alice, blob) == 0
    async with blobs.upload_lock(alice, blob):
        assert await blobs.append(alice, blob, data[:1000]) == 1000
        assert await blobs.append(alice, blob, data[1000:2500]) == 2500
    assert await blobs.received(alice, blob) == 2500
    assert await blobs.received(os.urandom(32), blob) == 0  # uploads are per uploader
    assert await blobs.append(alice, blob, data[2500:]) == 3000
    assert await blobs.publish(alice, blob)
    assert await blobs.received(alice, blob) == 0  # the partial upload is gone
    assert await blobs.read(blob, 0, 3000) == data
    for offset, length in ((0, 1), (999, 2), (1000, 1500), (2999, 100), (3000, 10)):
        assert await blobs.read(blob, offset, length) == data[offset : offset + length]
    await blobs.remove(blob)
    with pytest.raises(FileNotFoundError):
        await blobs.read(blob, 0, 10)
    await blobs.remove(blob)  # no error when missing


@async_test
async def test_a_mismatching_upload_is_discarded(blobs: BlobStore) -> None:
    alice, blob = os.urandom(32), os.urandom(32)
    await blobs.append(alice, blob, b"not what the id says")
    assert not await blobs.publish(alice, blob)
    assert await blobs.received(alice, blob) == 0
    with pytest.raises(FileNotFoundError):
        await blobs.read(blob, 0, 10)


@async_test
async def test_discard_and_stray_uploads(blobs: BlobStore) -> None:
    alice, blob = os.urandom(32), os.urandom(32)
    await blobs.append(alice, blob, b"x" * 10)
    future = (time.time_ns() // 1_000_000) + 60_000
    assert (alice, blob) in await blobs.stray_uploads(future)
    assert (alice, blob) not in await blobs.stray_uploads(future - 3_600_000)
    await blobs.discard(alice, blob)
    assert await blobs.received(alice, blob) == 0
    assert await blobs.stray_uploads(future) == []
    await blobs.discard(alice, blob)  # no error when there is none
