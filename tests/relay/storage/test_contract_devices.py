"""Storage contract: device lists, only a higher version replaces one; a device is in at
most one account; a list is found by its account or by any of its devices."""

from __future__ import annotations

import os

from tenchat.relay.storage import Store
from tests.support.wsclient import async_test

from .conftest import refused


@async_test
async def test_device_lists(store: Store) -> None:
    alice, d1, d2, eve = (os.urandom(32) for _ in range(4))
    assert await store.device_list(alice) is None
    await store.put_device_list(alice, 1, [alice, d1], b"v1")
    assert await store.device_list(alice) == b"v1"
    assert await store.device_list(d1) == b"v1"
    await refused(store.put_device_list(alice, 1, [alice], b"again"), "forbidden")
    await refused(store.put_device_list(alice, 0, [alice], b"older"), "forbidden")
    await refused(store.put_device_list(eve, 1, [eve, d1], b"steal"), "forbidden")
    assert await store.device_list(eve) is None
    await store.put_device_list(alice, 2, [alice, d2], b"v2")  # d1 removed, d2 added
    assert await store.device_list(d1) is None
    assert await store.device_list(d2) == b"v2"
    await store.put_device_list(eve, 1, [eve, d1], b"eve")  # d1 is no one's now
    assert await store.device_list(d1) == b"eve"
