"""SIGKILL the relay in the middle of a burst of 1,000 sends, restart it: every message
the relay acknowledged as stored reaches bob, and none is shown twice."""

from __future__ import annotations

import asyncio

import pytest

from tenchat.client.connection import ConnectionLost
from tenchat.common import frames as f
from tests.support.clients import Pair
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow

BURST = 1000
KILL_AFTER = 300  # acks seen before the SIGKILL


async def burst_then_crash(two_clients: Pair, relay: RelayProcess) -> None:
    alice, bob = two_clients
    contact = await alice.resolve("bob")
    for i in range(BURST):
        await alice.queue_text(contact.user, f"burst message {i}")
    assert await alice.encrypt_pending() == {}  # starts the session: one bundle fetch
    outbox = await alice.cache.outbox.items()
    # the burst, and alice's profile key, queued with the first message she writes to bob
    # (sealed sender: client/sealed_sender.py) — automatic content, not a written message
    messages = {i.msg_id for i in outbox if i.written}
    assert len(messages) == BURST and len(outbox) == BURST + 1

    # Send the burst pipelined (as the outbox does), noting each Stored ack, and
    # SIGKILL the relay once KILL_AFTER acks are in.
    conn = await alice.connection()
    acked: set[bytes] = set()
    window = asyncio.Semaphore(64)

    async def send(msg_id: bytes, peer: bytes, envelope: bytes) -> None:
        async with window:
            try:
                reply = await conn.request(f.Send, to=peer, msg=msg_id, body=envelope)
            except ConnectionLost:
                return
            assert isinstance(reply, f.Stored) and reply.msg == msg_id
            acked.add(msg_id)
            if len(acked) == KILL_AFTER:
                relay.kill()

    await asyncio.gather(*(send(i.msg_id, i.peer, i.envelope) for i in outbox))
    assert KILL_AFTER <= len(acked) < len(outbox), len(acked)

    relay.start()  # same data dir, same port
    # alice's client retries its whole outbox: acked ones again too (their ack was
    # never recorded in the outbox), which the relay must store only once.
    assert await alice.flush_outbox() == len(outbox)
    assert await alice.cache.outbox.items() == []

    received: list[bytes] = []
    await bob.sync(on_messages=lambda rows: received.extend(r.id for r in rows))
    assert len(received) == len(set(received)), "a message was delivered twice"
    acked_messages = acked & messages
    assert acked_messages <= set(received), f"{len(acked_messages - set(received))} lost"
    assert set(received) == messages  # and the retries got the rest
    history = await bob.cache.messages.history(alice.user, BURST * 2)
    assert len(history) == BURST
    assert sorted(int(m.text.split()[-1]) for m in history) == list(range(BURST))
    shown = await bob.take_unshown()
    assert len(shown) == BURST and len({m.id for m in shown}) == BURST


@pytest.mark.asyncio
async def test_sigkill_mid_burst_loses_nothing_acknowledged(two_clients: Pair,
                                                            relay: RelayProcess) -> None:
    async with asyncio.timeout(240):
        await burst_then_crash(two_clients, relay)
