"""The relay's hub and subscriptions in this process: real server, store, hub and
connections (websockets' framing and flow control), no socket — see tests/support/inproc.py.

What is checked here is ordering and flow, which tests over TCP can only sample: the push
order within a connection across the drain → live switch, a writer's answers before its
commit's pushes, a slow reader's live buffer overflowing into a re-drain, a reader that
stopped being cut, group fan-out to many subscribers, and the per-connection request
window with the socket-level backpressure behind it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest
from nacl.signing import SigningKey

from tenchat.common.frames import (
    Deliver,
    GroupChangeReq,
    GroupDeliver,
    GroupSend,
    GroupStored,
    Ok,
    Send,
    Stored,
    Subscribe,
    Synced,
)
from tests.support.groups import TestGroup
from tests.support.inproc import Peer, StartRelay, eventually

# Each test on asyncio's loop and on uvloop, the loop the relay runs on in production
# (loop factories: tests/conftest.py).
pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])


def _send(peer: Peer, to: bytes, body: bytes) -> Send:
    frame = Send(id=peer.next_id(), to=to, msg=os.urandom(16), body=body)
    peer.send(frame)
    return frame


async def _subscribe(peer: Peer) -> Synced:
    assert isinstance(await peer.call(Subscribe), Ok)
    return await peer.wait_for(lambda f: isinstance(f, Synced))  # type: ignore[no-any-return]


async def test_pushes_arrive_once_each_in_seq_order_across_drain_and_live(
    relay_with: StartRelay,
) -> None:
    backlog, live = 400, 300
    relay = await relay_with(page_size=8)
    alice, bob = await relay.login(), await relay.login()
    for i in range(backlog):  # queued before bob subscribes: the drain (50 pages)
        _send(alice, bob.user, b"%d" % i)
    await alice.wait_count(Stored, backlog)
    bob.send(Subscribe(id=bob.next_id()))
    # Committed while the drain pages through the queue (so both the drain and the
    # live buffer see them), and after it: live pushes.
    for i in range(backlog, backlog + live):
        _send(alice, bob.user, b"%d" % i)
        if i % 10 == 0:
            await asyncio.sleep(0)
    total = backlog + live
    stored = await alice.wait_count(Stored, total)
    delivered = await bob.wait_count(Deliver, total)
    await asyncio.sleep(0.05)  # (nothing more may come)

    assert len(bob.of(Deliver)) == total
    assert [d.body for d in delivered] == [b"%d" % i for i in range(total)]
    assert [d.seq for d in delivered] == sorted(s.seq for s in stored)
    synced = bob.of(Synced)
    assert len(synced) == 1
    # Synced comes after the backlog it reports, before anything above it.
    at = bob.frames.index(synced[0])
    assert all(d.seq <= synced[0].seq for d in bob.frames[:at] if isinstance(d, Deliver))
    assert all(d.seq > synced[0].seq for d in bob.frames[at:] if isinstance(d, Deliver))
    assert synced[0].seq >= stored[backlog - 1].seq


async def test_a_writers_answer_leaves_before_the_pushes_of_its_commit(
    relay_with: StartRelay,
) -> None:
    relay = await relay_with()
    alice = await relay.login()
    await _subscribe(alice)
    for i in range(200):  # to herself: answer and push on one connection
        _send(alice, alice.user, b"%d" % i)
    await alice.wait_count(Deliver, 200)
    await alice.wait_count(Stored, 200)
    answered = {f.seq: n for n, f in enumerate(alice.frames) if isinstance(f, Stored)}
    pushed = {f.seq: n for n, f in enumerate(alice.frames) if isinstance(f, Deliver)}
    assert answered.keys() == pushed.keys()
    late = [seq for seq in answered if answered[seq] > pushed[seq]]
    assert late == [], f"pushed before their answer: {late[:10]}"

    # The same for a group post: the poster is an online member of the group.
    g = TestGroup()
    record = g.record(alice.key, "create", name="g")
    created = await alice.call(GroupChangeReq, record=record)
    assert isinstance(created, GroupStored), created
    for _ in range(50):
        alice.send(GroupSend(id=alice.next_id(), group=g.id, msg=os.urandom(16), body=b"p"))
    await alice.wait_count(GroupStored, 51)
    await eventually(lambda: len(alice.of(GroupDeliver)) >= 51)
    g_answered = {f.gseq: n for n, f in enumerate(alice.frames)
                  if isinstance(f, GroupStored)}
    g_pushed = {f.gseq: n for n, f in enumerate(alice.frames)
                if isinstance(f, GroupDeliver)}
    assert g_answered.keys() == g_pushed.keys()
    assert all(g_answered[s] < g_pushed[s] for s in g_answered)


async def test_a_slow_reader_overflows_its_live_buffer_and_gets_everything_from_the_store(
    relay_with: StartRelay,
) -> None:
    relay = await relay_with(live_buffer=8, write_limit=4096)
    alice, bob = await relay.login(), await relay.login()
    await _subscribe(bob)
    bob.reading = False  # bob's socket buffer fills; the relay's writes pause
    for i in range(300):
        _send(alice, bob.user, b"%04d" % i + b"." * 300)
    stored = await alice.wait_count(Stored, 300)  # senders are not held up by bob
    await asyncio.sleep(0.05)
    assert bob.conn.paused, "bob's connection should be over its write limit"
    sub = bob.session.subscription
    assert len(sub._buffer) <= 8  # dropped on overflow, not grown
    before = len(bob.of(Deliver))
    assert before < 300

    bob.resume()
    delivered = await bob.wait_count(Deliver, 300)
    await asyncio.sleep(0.05)
    assert [d.seq for d in bob.of(Deliver)] == [s.seq for s in stored]
    assert [d.body[:4] for d in delivered] == [b"%04d" % i for i in range(300)]


async def test_a_reader_that_stopped_is_cut_and_its_queue_waits_in_the_store(
    relay_with: StartRelay,
) -> None:
    relay = await relay_with(send_timeout=1, write_limit=2048)
    alice, bob = await relay.login(), await relay.login()
    await _subscribe(bob)
    bob.reading = False
    for i in range(100):
        _send(alice, bob.user, b"%03d" % i + b"." * 500)
    await alice.wait_count(Stored, 100)
    # The connection watch looks once a second: stalled at one look, cut at the next.
    await eventually(lambda: bob.closed, timeout=5, what=lambda: "bob was not cut")
    assert bob.transport.aborted
    await bob.close()
    assert relay.hub.sessions(bob.user) == frozenset()

    # alice's connection was not affected, and bob's queue is whole.
    last = await alice.request(_send(alice, bob.user, b"100"))
    assert isinstance(last, Stored)
    again = await relay.login(bob.key)
    synced = await _subscribe(again)
    got = again.of(Deliver)
    assert [d.body[:3] for d in got] == [b"%03d" % i for i in range(101)]
    assert synced.seq == last.seq


async def test_a_group_post_reaches_every_online_member_once_in_order(
    relay_with: StartRelay,
) -> None:
    members = 60
    relay = await relay_with()
    owner = await relay.login()
    keys = [SigningKey.generate() for _ in range(members)]
    g = TestGroup()
    record = g.record(owner.key, "create", name="big",
                      members=[bytes(k.verify_key) for k in keys])
    created = await owner.call(GroupChangeReq, record=record)
    assert isinstance(created, GroupStored), created
    peers = [await relay.login(k, publish=False) for k in keys]
    for peer in [owner, *peers]:
        await _subscribe(peer)
    assert relay.hub.group_online(g.id) == members + 1

    posts = [GroupSend(id=owner.next_id(), group=g.id, msg=os.urandom(16), body=b"%d" % i)
             for i in range(20)]
    for post in posts:
        owner.send(post)
    answers = await owner.wait_count(GroupStored, 21)
    gseqs = [a.gseq for a in answers[1:]]
    assert gseqs == sorted(gseqs)
    for peer in peers:
        await eventually(lambda p=peer: len([f for f in p.of(GroupDeliver)
                                             if not f.change]) >= 20)
    await asyncio.sleep(0.05)
    expected = [(s, p.msg) for s, p in zip(gseqs, posts, strict=True)]
    for peer in peers:
        got = [f for f in peer.of(GroupDeliver) if not f.change]
        assert [(f.gseq, f.msg) for f in got] == expected

    # A member who leaves the connection is no longer fanned out to.
    await peers[0].close()
    assert relay.hub.group_online(g.id) == members


async def test_the_request_window_holds_unanswered_requests_and_pauses_reading(
    relay_with: StartRelay,
) -> None:
    relay = await relay_with(inflight_max=4)
    alice, bob = await relay.login(), await relay.login()
    lock = sqlite3.connect(relay.config.db_path, isolation_level=None, timeout=5)
    lock.execute("BEGIN IMMEDIATE")  # the relay's writer cannot commit meanwhile
    try:
        sent = [_send(alice, bob.user, b"%d" % i) for i in range(40)]
        session = alice.session
        await eventually(lambda: session.deferred_count == 4)
        await asyncio.sleep(0.1)
        # Four requests wait for their commit; the read loop waits for a slot and the
        # frames behind them stay unread, until the connection stops reading the socket.
        assert session.deferred_count == 4
        assert alice.of(Stored) == []
        assert alice.transport.reading_paused
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    stored = await alice.wait_count(Stored, 40)
    assert [s.msg for s in stored] == [f.msg for f in sent]
    assert [s.seq for s in stored] == sorted(s.seq for s in stored)
    await eventually(lambda: not alice.transport.reading_paused)
    assert session.deferred_count == 0
