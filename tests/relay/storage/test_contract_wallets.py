"""Storage contract: wallet bindings, one per address, the newest wins."""

from __future__ import annotations

import os

from tenchat.relay.storage import Store
from tests.support.wsclient import async_test

from .conftest import refused

ADDR = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


@async_test
async def test_link_move_and_unlink(store: Store) -> None:
    alice, bob = os.urandom(32), os.urandom(32)
    assert await store.wallet_owner(ADDR) is None
    await store.put_wallet_link(ADDR, alice, 10, b"a1")
    await store.put_wallet_link(OTHER, alice, 5, b"a0")
    assert await store.wallet_owner(ADDR) == alice
    assert await store.wallet_links(alice) == [b"a0", b"a1"]  # oldest first
    await refused(store.put_wallet_link(ADDR, bob, 9, b"older"), "forbidden")
    await store.put_wallet_link(ADDR, bob, 11, b"b1")  # newer: the address moves
    assert await store.wallet_owner(ADDR) == bob
    assert await store.wallet_links(alice) == [b"a0"]
    assert await store.wallet_unlink(alice, ADDR) is False  # not alice's any more
    assert await store.wallet_unlink(bob, ADDR) is True
    assert await store.wallet_owner(ADDR) is None
