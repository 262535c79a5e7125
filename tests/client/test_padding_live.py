"""Padding through a real relay (issue 12, item 10): the relay can't tell a delivery receipt
from a short text by its size, and padded messages read back as before."""

from __future__ import annotations

import msgspec
import pytest

from tenchat.client.cache import DELIVERED
from tenchat.common import frames as f
from tests.support.clients import Pair

pytestmark = pytest.mark.slow


@pytest.mark.asyncio
async def test_receipt_and_short_text_look_alike_on_the_relay(two_clients: Pair) -> None:
    alice, bob = two_clients
    sent = await alice.send_text("bob", "hi")
    await bob.sync()  # reads it and sends alice a `delivered` receipt
    await bob.send_text("alice", "ok")  # on the same session, right after
    await bob.send_text("alice", "ok!")
    conn = await alice.connection()
    page = await conn.request(f.Fetch, user=alice.user)  # what the relay holds
    # bob holds alice's profile key (it came with her first message), so his receipt and
    # his second text go sealed; his first text to her goes named (contacts-only
    # presence), then his own profile key (client/sealed_sender.py). Within each kind a
    # receipt, a short text and a key look alike.
    assert isinstance(page, f.Messages) and len(page.items) == 4
    kinds: dict[str, list[int]] = {}
    for item in page.items:
        kinds.setdefault(msgspec.msgpack.decode(item.body)["t"], []).append(len(item.body))
    assert sorted(kinds) == ["ratchet", "sealed"]  # the outer layer of each envelope
    sealed, named = kinds["sealed"], kinds["ratchet"]
    # sealed: the receipt and the second text (and the profile key once the first text is
    # stored); named: the first text (and the key, if sent before that) — each alike
    assert len(sealed) >= 2 and len(set(sealed)) == 1
    assert len(named) >= 1 and len(set(named)) == 1

    await alice.sync()  # all open: the texts show, the receipt moves the tick
    assert [m.text for m in await alice.page(bob.user) if not m.outgoing] == ["ok", "ok!"]
    mine = await alice.cache.messages.get(bob.user, sent.id)
    assert mine is not None and mine.status == DELIVERED
