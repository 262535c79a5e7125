"""Ephemeral 1:1 messages (typing indicators) through a real relay: the short receive path
shows typing, and nothing else — a hostile peer can't slip a chat message past the queue
as an ephemeral one — and a blocked peer's typing is never shown."""

from __future__ import annotations

import asyncio
import os

import pytest

from tenchat.client.events import ONLINE, ConnectionChanged, MessageAdded, TypingChanged
from tenchat.common import content as c
from tenchat.common import frames as f
from tests.client.test_live import Recorder
from tests.support.clients import Pair

pytestmark = pytest.mark.slow


@pytest.mark.asyncio
async def test_ephemeral_carries_typing_only_and_respects_blocks(two_clients: Pair) -> None:
    async with asyncio.timeout(60):
        alice, bob = two_clients
        await alice.send_text("bob", "hi")  # a session each way after bob answers
        await bob.sync()
        await bob.send_text("alice", "hi alice")
        await alice.sync()
        a_events, b_events = Recorder(alice), Recorder(bob)
        tasks = [asyncio.create_task(cl.run()) for cl in (alice, bob)]
        for rec in (a_events, b_events):
            await rec.wait_for(lambda e: isinstance(e, ConnectionChanged) and e.state == ONLINE)

        await alice.send_typing(bob.user, True)
        await b_events.wait_for(
            lambda e: isinstance(e, TypingChanged) and e.peer == alice.user and e.active)

        # A chat message sent as ephemeral: never queued, so it must not become a message.
        text = c.Text(id=os.urandom(16), text="sneaked in", sent_at=1)
        async with alice.cache.transaction():
            envelope = await alice.encrypt_for(bob.user, c.encode_content(text))
        conn = await alice.connection()
        await conn.request(f.Send, to=bob.user, msg=os.urandom(16), body=envelope, eph=True)
        await alice.send_typing(bob.user, False)  # after it, in order: bob got both
        await b_events.wait_for(
            lambda e: isinstance(e, TypingChanged) and e.peer == alice.user and not e.active)
        assert not any(isinstance(e, MessageAdded) for e in b_events.events)
        assert await bob.cache.messages.get(alice.user, text.id) is None
        # The session survived the dropped one: the next real message still decrypts.
        await alice.send_text("bob", "still here")
        added = await b_events.wait_for(lambda e: isinstance(e, MessageAdded))
        assert isinstance(added, MessageAdded) and added.message.text == "still here"

        # bob blocks alice on his side only: her typing is dropped by his client.
        async with bob.cache.transaction():
            await bob.cache.contacts.set_flag(alice.user, "blocked", True)
        before = len(b_events.events)
        await alice.send_typing(bob.user, True)
        await asyncio.sleep(0.5)
        assert not any(isinstance(e, TypingChanged) for e in b_events.events[before:])

        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.asyncio
async def test_hostile_ephemeral_bodies_are_dropped_and_receiving_goes_on(
        two_clients: Pair) -> None:
    async with asyncio.timeout(60):
        alice, bob = two_clients
        await alice.send_text("bob", "hi")
        await bob.sync()
        # 1. Not an envelope at all, alone in its batch (the short path): dropped, no raise.
        junk = f.Deliver(seq=0, msg=os.urandom(16), sender=alice.user, at=1, body=b"\xc1junk")
        assert await bob.receive([junk]) == []
        # 2. A chat message sent as ephemeral in the same batch as a queued one (the full
        #    path): the queued one is a message, the ephemeral one is not.
        queued = c.Text(id=os.urandom(16), text="queued", sent_at=1)
        sneaked = c.Text(id=os.urandom(16), text="sneaked in", sent_at=2)
        async with alice.cache.transaction():
            env_q = await alice.encrypt_for(bob.user, c.encode_content(queued))
            env_e = await alice.encrypt_for(bob.user, c.encode_content(sneaked))
        new = await bob.receive([
            f.Deliver(seq=10**9, msg=queued.id, sender=alice.user, at=1, body=env_q),
            f.Deliver(seq=0, msg=sneaked.id, sender=alice.user, at=2, body=env_e),
            junk,
        ])
        assert [m.text for m in new] == ["queued"]
        assert await bob.cache.messages.get(alice.user, sneaked.id) is None
        # Still receiving: the next real message arrives through the relay as usual.
        await alice.send_text("bob", "after the junk")
        assert await bob.sync() == 1
