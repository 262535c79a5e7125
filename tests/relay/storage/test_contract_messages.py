"""Storage contract: 1:1 queues — enqueue, pending, ack, dedupe, expiry, caps, blocks,
contacts and presence, and what the commit listener is told."""

from __future__ import annotations

import asyncio
import os

from tenchat.common.errors import ProtocolError
from tenchat.relay.storage import Store, StoredMessage
from tests.support.wsclient import async_test

from .conftest import Clock, StoreOpener, refused, uid


def mid() -> bytes:
    return os.urandom(16)



@async_test
async def test_enqueue_pending_ack(store: Store, clock: Clock) -> None:
    alice, bob = uid(), uid()
    ids = [mid() for _ in range(3)]
    stored = [await store.enqueue(bob, alice, m, b"body%d" % i) for i, m in enumerate(ids)]
    assert [s.seq for s in stored] == sorted(s.seq for s in stored)
    assert len({s.seq for s in stored}) == 3
    assert all(s.at == clock.now for s in stored)
    items = await store.pending(bob, 0, 10)
    assert [(d.seq, d.msg, d.sender, d.body) for d in items] == [
        (s.seq, m, alice, b"body%d" % i) for i, (s, m) in enumerate(zip(stored, ids, strict=True))]
    assert [d.seq for d in await store.pending(bob, stored[0].seq, 1)] == [stored[1].seq]
    assert await store.pending(alice, 0, 10) == []
    await store.ack(bob, [stored[0].seq, stored[2].seq])
    assert [d.seq for d in await store.pending(bob, 0, 10)] == [stored[1].seq]
    await store.ack(bob, [stored[0].seq])  # already acked: ignored


@async_test
async def test_ack_of_another_queue_is_forbidden_and_deletes_nothing(store: Store) -> None:
    alice, bob, carol = uid(), uid(), uid()
    to_bob = await store.enqueue(bob, alice, mid(), b"x")
    to_carol = await store.enqueue(carol, alice, mid(), b"y")
    await refused(store.ack(bob, [to_bob.seq, to_carol.seq]), "forbidden")
    assert len(await store.pending(bob, 0, 10)) == 1
    assert len(await store.pending(carol, 0, 10)) == 1


@async_test
async def test_acks_in_one_batch_a_forbidden_one_refused_alone(
        make_store: StoreOpener) -> None:
    async with make_store(queue_max=3) as store:
        alice, bob, carol = uid(), uid(), uid()
        to_bob = [(await store.enqueue(bob, alice, mid(), b"x")).seq for _ in range(3)]
        to_carol = (await store.enqueue(carol, alice, mid(), b"y")).seq
        results = await asyncio.gather(
            store.ack(bob, [to_bob[0], to_carol]),  # forbidden: deletes nothing
            store.ack(bob, [to_bob[1], to_bob[1]]), store.ack(carol, [to_carol]),
            store.ack(bob, [to_bob[1]]),  # acked twice in the batch: deleted once
            return_exceptions=True)
        assert [isinstance(r, ProtocolError) and r.code for r in results] == [
            "forbidden", False, False, False]
        assert [d.seq for d in await store.pending(bob, 0, 10)] == [to_bob[0], to_bob[2]]
        assert await store.pending(carol, 0, 10) == []
        await store.enqueue(bob, alice, mid(), b"x")  # the queue counts 2 again: room for 1
        await refused(store.enqueue(bob, alice, mid(), b"x"), "queue_full")


@async_test
async def test_a_retry_gets_the_original_answer(store: Store) -> None:
    alice, bob = uid(), uid()
    m = mid()
    first = await store.enqueue(bob, alice, m, b"once")
    again = await store.enqueue(bob, alice, m, b"twice")
    assert again == first
    await store.ack(bob, [first.seq])
    assert await store.enqueue(bob, alice, m, b"after ack") == first  # still recognised
    assert await store.pending(bob, 0, 10) == []
    # the same msg_id from another sender is another message
    assert (await store.enqueue(bob, uid(), m, b"other")).seq != first.seq


@async_test
async def test_retries_in_one_batch_are_one_message(store: Store) -> None:
    alice, bob = uid(), uid()
    m = mid()
    a, b = await asyncio.gather(store.enqueue(bob, alice, m, b"1"),
                                store.enqueue(bob, alice, m, b"1"))
    assert a == b
    assert len(await store.pending(bob, 0, 10)) == 1


@async_test
async def test_commit_listener_gets_stored_messages_in_seq_order(store: Store) -> None:
    seen: list[StoredMessage] = []
    store.on_commit = seen.extend
    alice, bob = uid(), uid()
    futs = [store.enqueue(bob, alice, mid(), b"%d" % i, 0, i == 0) for i in range(5)]
    stored = await asyncio.gather(*futs)
    for _ in range(3):  # the listener runs two loop turns after the commit
        await asyncio.sleep(0)
    assert [(r, d.seq, d.body, conv) for r, d, _, conv in seen] == [
        (bob, s.seq, b"%d" % i, i == 0) for i, s in enumerate(stored)]


@async_test
async def test_expired_messages_are_not_pending_and_are_swept(store: Store,
                                                                 clock: Clock) -> None:
    alice, bob = uid(), uid()
    keep = await store.enqueue(bob, alice, mid(), b"keep")
    await store.enqueue(bob, alice, mid(), b"soon", clock.now + 1000)
    assert len(await store.pending(bob, 0, 10)) == 2
    clock.now += 1000
    assert [d.seq for d in await store.pending(bob, 0, 10)] == [keep.seq]
    assert await store.sweep(clock.now, 100) == 1
    assert await store.sweep(clock.now, 100) == 0
    assert (await store.stats())["messages"] == 1


@async_test
async def test_queue_max_refuses_queue_full(make_store: StoreOpener) -> None:
    async with make_store(queue_max=3) as store:
        alice, bob = uid(), uid()
        stored = [await store.enqueue(bob, alice, mid(), b"x") for _ in range(3)]
        await refused(store.enqueue(bob, alice, mid(), b"x"), "queue_full")
        await store.enqueue(uid(), alice, mid(), b"x")  # another queue is not full
        await store.ack(bob, [stored[0].seq])
        await store.enqueue(bob, alice, mid(), b"x")  # room again


@async_test
async def test_queue_bytes_max_counts_bodies(make_store: StoreOpener) -> None:
    async with make_store(queue_bytes_max=100) as store:
        alice, bob = uid(), uid()
        await store.enqueue(bob, alice, mid(), b"x" * 60)
        await refused(store.enqueue(bob, alice, mid(), b"x" * 41), "queue_full")
        await store.enqueue(bob, alice, mid(), b"x" * 40)


@async_test
async def test_queue_full_within_one_batch(make_store: StoreOpener) -> None:
    async with make_store(queue_max=2) as store:
        alice, bob = uid(), uid()
        results = await asyncio.gather(
            *(store.enqueue(bob, alice, mid(), b"x") for _ in range(4)), return_exceptions=True)
        assert [isinstance(r, ProtocolError) and r.code for r in results] == [
            False, False, "queue_full", "queue_full"]


@async_test
async def test_queue_share_limits_one_sender(make_store: StoreOpener) -> None:
    async with make_store(queue_max=4, queue_share=50) as store:
        alice, bob, carol = uid(), uid(), uid()
        first = await store.enqueue(bob, alice, mid(), b"x")
        await store.enqueue(bob, alice, mid(), b"x")
        await refused(store.enqueue(bob, alice, mid(), b"x"), "queue_share")
        await store.enqueue(bob, carol, mid(), b"x")  # another sender has its share
        await store.ack(bob, [first.seq])
        await store.enqueue(bob, alice, mid(), b"x")


@async_test
async def test_a_blocked_sender_is_answered_but_nothing_is_queued(store: Store) -> None:
    alice, bob = uid(), uid()
    seen: list[StoredMessage] = []
    store.on_commit = seen.extend
    assert not await store.is_blocked(bob, alice)
    await store.set_block(bob, alice, True)
    assert await store.is_blocked(bob, alice)
    blocked = await store.enqueue(bob, alice, mid(), b"hidden")
    assert blocked.seq > 0
    assert await store.pending(bob, 0, 10) == []
    await store.set_block(bob, alice, False)
    assert not await store.is_blocked(bob, alice)
    after = await store.enqueue(bob, alice, mid(), b"seen")
    assert after.seq > blocked.seq  # a blocked send's seq is never handed out again
    assert [d.body for d in await store.pending(bob, 0, 10)] == [b"seen"]
    for _ in range(3):
        await asyncio.sleep(0)
    assert [d.body for _, d, _, _ in seen] == [b"seen"]


@async_test
async def test_seqs_of_blocked_sends_survive_a_restart(make_store: StoreOpener) -> None:
    async with make_store() as store:
        alice, bob = uid(), uid()
        await store.set_block(bob, alice, True)
        blocked = await store.enqueue(bob, alice, mid(), b"hidden")
        await store.close()
        await store.open()
        assert (await store.enqueue(bob, uid(), mid(), b"x")).seq > blocked.seq


@async_test
async def test_contacts_are_made_by_conversation_messages_only(store: Store) -> None:
    alice, bob, carol = uid(), uid(), uid()
    await store.enqueue(bob, alice, mid(), b"receipt")  # not a conversation message
    assert await store.contacts_of([alice, carol], bob) == set()
    await store.enqueue(bob, alice, mid(), b"hi", 0, True)
    assert await store.contacts_of([alice, carol], bob) == {alice}
    await store.set_block(alice, bob, True)  # who blocks the peer does not show to it
    assert await store.contacts_of([alice, carol], bob) == set()


@async_test
async def test_presence_setting(store: Store) -> None:
    alice = uid()
    assert not await store.hide_presence(alice)
    await store.set_privacy(alice, True)
    assert await store.hide_presence(alice)
    await store.set_privacy(alice, False)
    assert not await store.hide_presence(alice)


@async_test
async def test_one_batch_of_sends_acks_and_a_block_mixed(store: Store) -> None:
    # Submitted without awaiting: one batch. A backend may gather the sends and acks
    # between other writes (PostgreSQL runs them as two runs), never across one: the
    # block applies to the sends after it only, and every call gets its own answer.
    alice, bob, carol = uid(), uid(), uid()
    old = [await store.enqueue(bob, alice, mid(), b"old%d" % i) for i in range(2)]
    to_carol = await store.enqueue(carol, alice, mid(), b"carol's")
    futs = [
        store.enqueue(bob, alice, mid(), b"before"),
        store.ack(bob, [old[0].seq]),
        store.enqueue(bob, carol, mid(), b"from carol"),
        store.ack(bob, [to_carol.seq]),  # another's queue: refused, alone
        store.set_block(bob, alice, True),
        store.enqueue(bob, alice, mid(), b"after the block"),
        store.ack(bob, [old[1].seq]),
    ]
    results = await asyncio.gather(*futs, return_exceptions=True)
    assert isinstance(results[3], ProtocolError) and results[3].code == "forbidden"
    sends = [results[i] for i in (0, 2, 5)]
    assert all(not isinstance(r, BaseException) and r.seq > to_carol.seq for r in sends)
    assert [d.body for d in await store.pending(bob, 0, 10)] == [b"before", b"from carol"]
    assert [d.body for d in await store.pending(carol, 0, 10)] == [b"carol's"]


async def _fits(store: Store, recipient: bytes, size: int) -> int | None:
    """The seq of a ``size``-byte message sent to ``recipient``; None if its queue is
    full (queue_full)."""
    try:
        return (await store.enqueue(recipient, uid(), mid(), b"x" * size)).seq
    except ProtocolError as exc:
        assert exc.code == "queue_full"
        return None


@async_test
async def test_queue_sizes_stay_exact_across_ack_expiry_retention_and_a_restart(
        make_store: StoreOpener, clock: Clock) -> None:
    # Each step leaves a queue whose room is known to the message and the byte: exactly
    # that much fits, then not one byte more.
    async with make_store(queue_max=5, queue_bytes_max=100) as store:
        bob, alice = uid(), uid()
        await store.enqueue(bob, alice, mid(), b"x" * 30, clock.now + 1000)  # expires
        clock.now += 1
        acked = await _fits(store, bob, 30)
        clock.now += 1
        assert await _fits(store, bob, 30) is not None  # retained until the sweep below
        clock.now += 1
        assert await _fits(store, bob, 11) is None  # 90 bytes queued
        assert await _fits(store, bob, 10) is not None
        assert await _fits(store, bob, 1) is None  # 100 bytes
        assert acked is not None
        await store.ack(bob, [acked])
        assert await _fits(store, bob, 31) is None
        assert await _fits(store, bob, 30) is not None
        assert await _fits(store, bob, 1) is None
        clock.now += 1000
        assert await store.sweep(clock.now, 100) == 1  # the expiring one
        swept = await store.retention_sweep(clock.now - 1000, 0, 100)  # before +3
        assert swept.messages == 1  # the one stored at +2 (the acked and expired are gone)
        assert [len(d.body) for d in await store.pending(bob, 0, 10)] == [10, 30]
        await store.close()
        await store.open()
        # 2 messages, 40 bytes queued: 60 bytes and 3 messages of room
        assert await _fits(store, bob, 61) is None
        room = [await _fits(store, bob, 20) for _ in range(3)]
        assert None not in room
        assert await _fits(store, bob, 1) is None  # 100 bytes, 5 messages
        await store.ack(bob, [room[0]])  # type: ignore[list-item]
        assert await _fits(store, bob, 1) is not None  # 81 bytes, 5 messages
        assert await _fits(store, bob, 1) is None  # the message cap now


@async_test
async def test_queue_caps_count_an_earlier_run_of_the_same_batch(
        make_store: StoreOpener) -> None:
    # A write between sends splits them into two runs in one transaction: the second
    # counts what the first queued.
    async with make_store(queue_max=3) as store:
        alice, bob = uid(), uid()
        results = await asyncio.gather(
            store.enqueue(bob, alice, mid(), b"x"), store.enqueue(bob, alice, mid(), b"x"),
            store.set_block(uid(), uid(), True),
            store.enqueue(bob, alice, mid(), b"x"), store.enqueue(bob, alice, mid(), b"x"),
            return_exceptions=True)
        assert [isinstance(r, ProtocolError) and r.code for r in results] == [
            False, False, False, False, "queue_full"]
