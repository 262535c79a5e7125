"""Storage contract: the device-linking rendezvous (docs/protocol.md §6E) — one blob per
slot, never overwritten, taken once, gone after LINK_TTL_MS (the clock is moved, not
waited for), at most LINK_PER_OWNER waiting per identity and link_bytes_max in all."""

from __future__ import annotations

import asyncio

from tenchat.relay.storage import Store
from tenchat.relay.storage.limits import LINK_PER_OWNER, LINK_TTL_MS
from tests.support.wsclient import async_test

from .conftest import Clock, StoreOpener, refused, uid


@async_test
async def test_single_use_and_expiry(store: Store, clock: Clock) -> None:
    me, other = uid(), uid()
    await store.put_link(b"a" * 32, b"blob", me)
    await refused(store.put_link(b"a" * 32, b"other", other), "forbidden")  # first wins
    assert await store.take_link(b"a" * 32) == b"blob"
    assert await store.take_link(b"a" * 32) is None  # used once
    await store.put_link(b"b" * 32, b"late", me)
    clock.now += LINK_TTL_MS - 1
    assert await store.take_link(b"c" * 32) is None  # nothing there
    clock.now += 1
    assert await store.take_link(b"b" * 32) is None  # expired
    await store.put_link(b"b" * 32, b"again", other)  # an expired slot is free again
    assert await store.take_link(b"b" * 32) == b"again"


@async_test
async def test_of_two_takes_at_once_one_gets_the_blob(store: Store) -> None:
    await store.put_link(b"a" * 32, b"blob", uid())
    taken = await asyncio.gather(store.take_link(b"a" * 32), store.take_link(b"a" * 32))
    assert sorted(taken, key=lambda b: b is None) == [b"blob", None]


@async_test
async def test_quotas(make_store: StoreOpener, clock: Clock) -> None:
    async with make_store(link_bytes_max=10) as store:
        me, other = uid(), uid()
        for i in range(LINK_PER_OWNER):
            await store.put_link(bytes([i]) * 32, b"x", me)
        await refused(store.put_link(b"z" * 32, b"x", me), "quota_exceeded")  # of yours
        await store.put_link(b"z" * 32, b"x", other)
        await refused(store.put_link(b"d" * 32, b"1234567", other), "quota_exceeded")  # all
        assert await store.take_link(b"z" * 32) == b"x"
        await store.take_link(bytes([0]) * 32)
        await store.put_link(b"d" * 32, b"123456", other)  # room again after takes: 9 bytes
        await store.put_link(b"e" * 32, b"y", me)  # and in my count: one taken; 10 bytes
        await refused(store.put_link(b"f" * 32, b"y", other), "quota_exceeded")
        clock.now += LINK_TTL_MS  # expired blobs hold no quota
        for i in range(LINK_PER_OWNER):
            await store.put_link(bytes([i + 10]) * 32, b"x", me)


@async_test
async def test_the_sweep_deletes_expired_blobs(store: Store, clock: Clock) -> None:
    await store.put_link(b"a" * 32, b"blob", uid())
    await store.sweep(clock.now + LINK_TTL_MS, 100)
    assert await store.take_link(b"a" * 32) is None
