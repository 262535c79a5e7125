"""Storage contract: handles and prekeys."""

from __future__ import annotations

import os

from tenchat.common.frames import OneTimePrekey, SignedPrekey
from tenchat.relay.storage import HandleRecord, Store
from tests.support.wsclient import async_test

from .conftest import StoreOpener, refused


def spk(key_id: int = 1) -> SignedPrekey:
    return SignedPrekey(key_id=key_id, pub=os.urandom(32), sig=os.urandom(64))


def otks(*ids: int) -> list[OneTimePrekey]:
    return [OneTimePrekey(key_id=i, pub=os.urandom(32)) for i in ids]


@async_test
async def test_register_and_look_up(store: Store) -> None:
    alice, bob = os.urandom(32), os.urandom(32)
    assert not await store.user_exists(alice)
    rec = await store.register(alice, "alice", b"sig")
    assert rec == HandleRecord("alice", alice, b"sig")
    assert await store.handle_by_name("alice") == rec
    assert await store.handle_by_user(alice) == rec
    assert await store.handle_by_name("bob") is None
    assert await store.user_exists(alice)
    assert await store.register(alice, "alice", b"other") == rec  # again: unchanged
    await refused(store.register(bob, "alice", b"sig"), "handle_taken")
    await refused(store.register(alice, "alice2", b"sig"), "forbidden")
    assert await store.handle_by_name("alice2") is None


@async_test
async def test_prekeys_and_bundles(store: Store) -> None:
    alice = os.urandom(32)
    assert await store.take_bundle(alice) is None  # no signed prekey yet
    key = spk()
    assert await store.publish_prekeys(alice, key, otks(1, 2, 3)) == 3
    assert await store.user_exists(alice)  # a signed prekey makes an identity exist
    assert await store.otk_count(alice) == 3
    assert await store.publish_prekeys(alice, None, otks(3, 4, 4)) == 4  # known ids dropped
    bundle = await store.take_bundle(alice)
    assert bundle is not None
    assert bundle.spk == key
    assert bundle.otk is not None and bundle.otk.key_id == 1  # the lowest first
    assert bundle.otk_count == 3
    without = await store.take_bundle(alice, with_otk=False)
    assert without is not None and without.otk is None and without.otk_count == 3
    for _ in range(3):
        await store.take_bundle(alice)
    empty = await store.take_bundle(alice)
    assert empty is not None and empty.otk is None and empty.otk_count == 0
    newer = spk(2)
    await store.publish_prekeys(alice, newer, [])
    assert (await store.take_bundle(alice)).spk == newer  # type: ignore[union-attr]


@async_test
async def test_otk_max_caps_one_time_prekeys(make_store: StoreOpener) -> None:
    async with make_store(otk_max=5) as store:
        alice = os.urandom(32)
        assert await store.publish_prekeys(alice, spk(), otks(*range(10))) == 5
        assert await store.publish_prekeys(alice, None, otks(*range(10, 20))) == 5
