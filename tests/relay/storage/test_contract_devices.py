"""Storage contract: device lists, only a higher version replaces one; a device is in at
most one account; a list is found by its account or by any of its devices."""

from __future__ import annotations

import os

from nacl.signing import SigningKey

from tenchat.common.groups import decode_signed
from tenchat.relay.storage import Store
from tests.support.groups import TestGroup
from tests.support.wsclient import async_test, user_of

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


@async_test
async def test_a_linked_devices_group_cursors_are_its_own(store: Store) -> None:
    owner = SigningKey.generate()
    alice, laptop, stranger = user_of(owner), os.urandom(32), os.urandom(32)
    g = TestGroup()
    record = g.record(owner, "create", name="g", members=[])
    created = await store.group_change(decode_signed(record)[0], record)
    posted = await store.group_post(g.id, alice, os.urandom(16), b"one", 0)
    member = await store.member_groups(alice)
    start = member[g.id]  # the account's cursor: where the laptop starts
    assert start <= created.seq
    assert await store.device_cursors(laptop, member) == {g.id: start}
    await store.group_ack(alice, g.id, posted.seq)  # the account's device read it all
    assert await store.device_cursors(laptop, await store.member_groups(alice)) == {
        g.id: start}  # the laptop's stays where it was
    await store.device_group_ack(laptop, alice, g.id, posted.seq + 100)  # ≤ the log's end
    assert await store.device_cursors(laptop, member) == {g.id: posted.seq}
    await store.device_group_ack(laptop, alice, g.id, 0)  # never backwards
    assert await store.device_cursors(laptop, member) == {g.id: posted.seq}
    assert await store.device_cursors(laptop, {}) == {}  # only the account's groups
    await refused(store.device_group_ack(laptop, stranger, g.id, 1), "forbidden")
