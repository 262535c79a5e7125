"""Padding through a real relay (issue 12, item 10): the relay can't tell a delivery receipt
from a short text by its size, and padded messages read back as before."""

from __future__ import annotations

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
    conn = await alice.connection()
    page = await conn.request(f.Fetch, user=alice.user)  # what the relay holds
    assert isinstance(page, f.Messages) and len(page.items) == 2
    receipt, text = (item.body for item in page.items)
    assert len(receipt) == len(text)

    await alice.sync()  # both open: the text shows, the receipt moves the tick
    assert [m.text for m in await alice.page(bob.user) if not m.outgoing] == ["ok"]
    mine = await alice.cache.messages.get(bob.user, sent.id)
    assert mine is not None and mine.status == DELIVERED
