"""Each privacy control, through a real relay: what it hides reaches neither the relay
nor the other client."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from tenchat.client.cache import DELIVERED, READ
from tenchat.client.events import (
    ONLINE,
    ConnectionChanged,
    MessageAdded,
    PresenceChanged,
    TypingChanged,
)
from tests.client.test_live import Recorder
from tests.support.clients import Pair
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def relay_rows(relay: RelayProcess) -> int:
    """Messages the relay holds in its queues right now (read-only peek at its database)."""
    db = sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        db.close()


@pytest.mark.asyncio
async def test_read_receipts_off(two_clients: Pair,
        relay: RelayProcess) -> None:
    async with asyncio.timeout(60):
        alice, bob = two_clients
        await bob.set_setting("read_receipts", False)
        sent = await alice.send_text("bob", "did you read this?")
        await bob.sync()
        assert relay_rows(relay) == 1  # only bob's delivery receipt is queued for alice
        assert await bob.mark_read("alice") == 1
        assert relay_rows(relay) == 1  # marking read queued nothing: no read receipt at all
        await alice.sync()
        (row,) = await alice.page(sent.peer)
        assert row.status == DELIVERED  # alice can't tell that bob read it
        (mine,) = await bob.page(alice.user)
        assert mine.status == READ  # bob's own copy is read
        for c in (alice, bob):
            await c.close()


@pytest.mark.asyncio
async def test_typing_off(two_clients: Pair) -> None:
    async with asyncio.timeout(60):
        alice, bob = two_clients
        await alice.send_text("bob", "hi")
        b_events, a_events = Recorder(bob), Recorder(alice)
        tasks = [asyncio.create_task(c.run()) for c in (alice, bob)]
        for rec in (a_events, b_events):
            await rec.wait_for(lambda e: isinstance(e, ConnectionChanged) and e.state == ONLINE)
        await alice.send_typing(bob.user, True)  # on: bob sees it
        await b_events.wait_for(lambda e: isinstance(e, TypingChanged) and e.active)
        await alice.set_setting("typing", False)
        before = len(b_events.events)
        await alice.send_typing(bob.user, True)
        # No fixed sleep: a message sent after it is a barrier (one connection, in order);
        # once bob has it, a typing indicator sent before it would have arrived first.
        await alice.send_text("bob", "barrier")
        await b_events.wait_for(lambda e: isinstance(e, MessageAdded)
                                and e.message.text == "barrier")
        assert not any(isinstance(e, TypingChanged) for e in b_events.events[before:])
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in (alice, bob):
            await c.close()


@pytest.mark.asyncio
async def test_hide_presence(two_clients: Pair) -> None:
    async with asyncio.timeout(60):
        alice, bob = two_clients
        await bob.set_setting("hide_presence", True)
        await alice.send_text("bob", "hi")
        a_events = Recorder(alice)
        a_task = asyncio.create_task(alice.run())
        await a_events.wait_for(lambda e: isinstance(e, ConnectionChanged) and e.state == ONLINE)
        b_events = Recorder(bob)
        b_task = asyncio.create_task(bob.run())  # bob is online, subscribed, and hidden
        await b_events.wait_for(lambda e: isinstance(e, ConnectionChanged) and e.state == ONLINE)
        # A barrier instead of a fixed sleep: bob's message reaches alice after any presence
        # push his coming online would have caused.
        await bob.send_text("alice", "barrier")
        await a_events.wait_for(lambda e: isinstance(e, MessageAdded)
                                and e.message.text == "barrier")
        assert (await alice.conversations())[0].online is False
        assert not any(isinstance(e, PresenceChanged) and e.online for e in a_events.events)
        for t in (a_task, b_task):
            t.cancel()
        await asyncio.gather(a_task, b_task, return_exceptions=True)
        for c in (alice, bob):
            await c.close()


@pytest.mark.asyncio
async def test_block_is_enforced_by_the_relay_too(two_clients: Pair,
        relay: RelayProcess) -> None:
    async with asyncio.timeout(60):
        alice, bob = two_clients
        await bob.send_text("alice", "hello")
        await alice.sync()
        await alice.set_blocked("bob", True)  # tells the relay (answered) as well
        before = relay_rows(relay)
        sent = await bob.send_text("alice", "are you ignoring me?")
        assert sent.status >= 1  # bob's client saw a normal "stored": he learns nothing
        assert relay_rows(relay) == before  # but the relay kept nothing for alice
        assert await alice.sync() == 0
        await alice.set_blocked("bob", False)
        await bob.send_text("alice", "after unblock")
        assert await alice.sync() == 1
        for c in (alice, bob):
            await c.close()
