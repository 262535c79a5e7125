"""Storage contract: blob uploads, stored blobs and the quota."""

from __future__ import annotations

import os

from tenchat.relay.storage import BlobBegun, Store
from tests.support.wsclient import async_test

from .conftest import refused


@async_test
async def test_upload_commit_and_sizes(store: Store) -> None:
    alice, blob = os.urandom(32), os.urandom(32)
    assert await store.blob_size(blob) is None
    assert await store.blob_begin(alice, blob, 100, 1000) == BlobBegun(False, True, 100)
    assert await store.blob_upload(alice, blob) == 100
    assert await store.blob_begin(alice, blob, 100, 1000) == BlobBegun(False, False, 100)
    await refused(store.blob_begin(alice, blob, 99, 1000), "protocol")
    await store.blob_commit(alice, blob, 100)
    assert await store.blob_upload(alice, blob) is None
    assert await store.blob_size(blob) == 100
    # stored already, for anyone
    assert await store.blob_begin(os.urandom(32), blob, 100, 1) == BlobBegun(True, False, 100)
    stats = await store.stats()
    assert (stats["blobs"], stats["blob_bytes"], stats["uploads"]) == (1, 100, 0)


@async_test
async def test_abort_forgets_the_upload(store: Store) -> None:
    alice, blob = os.urandom(32), os.urandom(32)
    await store.blob_begin(alice, blob, 10, 1000)
    await store.blob_abort(alice, blob)
    assert await store.blob_upload(alice, blob) is None
    assert await store.blob_begin(alice, blob, 10, 1000) == BlobBegun(False, True, 10)


@async_test
async def test_quota_counts_stored_blobs_and_uploads(store: Store) -> None:
    alice = os.urandom(32)
    done, going = os.urandom(32), os.urandom(32)
    await store.blob_begin(alice, done, 400, 1000)
    await store.blob_commit(alice, done, 400)
    await store.blob_begin(alice, going, 400, 1000)
    await refused(store.blob_begin(alice, os.urandom(32), 201, 1000), "quota_exceeded")
    await store.blob_begin(alice, os.urandom(32), 200, 1000)
    await store.blob_begin(os.urandom(32), os.urandom(32), 1000, 1000)  # someone else's


@async_test
async def test_own_quota(store: Store) -> None:
    alice = os.urandom(32)
    assert await store.blob_quota(alice) is None
    await store.set_blob_quota(alice, 5)
    assert await store.blob_quota(alice) == 5
    await store.set_blob_quota(alice, None)
    assert await store.blob_quota(alice) is None
