"""Message queues end to end: stored means committed, dedupe, ordering, live push,
acks, ephemeral messages, prekeys, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os

import pytest

from tenchat.common.frames import (
    Ack,
    Authed,
    Bundle,
    Deliver,
    Error,
    Fetch,
    FetchBundle,
    Messages,
    Ok,
    PrekeysLow,
    PrekeyStatus,
    Send,
    Stored,
    Subscribe,
    Synced,
)
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, async_test, logged_in, msg_id, new_key

pytestmark = pytest.mark.slow


async def send(c: RelayClient, to: bytes, body: bytes, mid: bytes | None = None) -> Stored:
    stored = await c.call(Send, to=to, msg=mid or msg_id(), body=body)
    assert isinstance(stored, Stored), stored
    return stored


async def drain(c: RelayClient) -> tuple[list[Deliver], int]:
    """Subscribe; the backlog pushed before Synced, and Synced's seq."""
    assert isinstance(await c.call(Subscribe), Ok)
    items: list[Deliver] = []
    while True:
        push = await c.next_push()
        if isinstance(push, Synced):
            return items, push.seq
        assert isinstance(push, Deliver), push
        items.append(push)


@async_test
async def test_stored_means_committed_even_after_sigkill(fresh_relay: RelayProcess) -> None:
    alice_key, bob_key = new_key(), new_key()
    alice = await RelayClient.login(fresh_relay.url, alice_key)
    bob = await RelayClient.login(fresh_relay.url, bob_key)
    await bob.publish()
    stored = [await send(alice, bob.user, f"m{i}".encode()) for i in range(20)]
    await alice.close()
    await bob.close()
    fresh_relay.kill()  # no graceful shutdown: only what was committed survives
    fresh_relay.start()
    async with await RelayClient.login(fresh_relay.url, bob_key) as bob:
        items, last = await drain(bob)
        assert [m.seq for m in items] == [s.seq for s in stored]
        assert [m.body for m in items] == [f"m{i}".encode() for i in range(20)]
        assert last == stored[-1].seq


@async_test
async def test_retry_with_the_same_msg_id_is_stored_once(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (alice, bob):
        mid = msg_id()
        first = await send(alice, bob.user, b"hello", mid)
        again = await send(alice, bob.user, b"hello", mid)
        assert (again.seq, again.at, again.msg) == (first.seq, first.at, mid)
        # Concurrent retries (same batch) too.
        mid2 = msg_id()
        twins = await asyncio.gather(*(send(alice, bob.user, b"x", mid2) for _ in range(5)))
        assert len({s.seq for s in twins}) == 1
        page = await bob.call(Fetch, user=bob.user)
        assert isinstance(page, Messages)
        assert [m.msg for m in page.items] == [mid, mid2]
        # Even after the ack, a late retry is recognised and not queued again.
        assert isinstance(await bob.call(Ack, seqs=[first.seq]), Ok)
        late = await send(alice, bob.user, b"hello", mid)
        assert late.seq == first.seq
        page = await bob.call(Fetch, user=bob.user)
        assert [m.msg for m in page.items] == [mid2]  # type: ignore[attr-defined]


@async_test
async def test_ordered_delivery_after_reconnect(relay: RelayProcess) -> None:
    bob_key = new_key()
    async with logged_in(relay.url, 2) as (alice, carol):
        async with await RelayClient.login(relay.url, bob_key) as bob:
            await bob.publish()
            items, _ = await drain(bob)
            assert items == []
        bob_user = bytes(bob_key.verify_key)
        # Two senders interleaving while Bob is away, many of them pipelined.
        sent = await asyncio.gather(
            *(send((alice, carol)[i % 2], bob_user, b"%d" % i) for i in range(300))
        )
        async with await RelayClient.login(relay.url, bob_key) as bob:
            items, last = await drain(bob)
            assert [m.seq for m in items] == sorted(s.seq for s in sent)
            assert last == max(s.seq for s in sent)
            # Acked half; reconnect: the rest again, still in order.
            assert isinstance(await bob.call(Ack, seqs=[m.seq for m in items[:150]]), Ok)
        async with await RelayClient.login(relay.url, bob_key) as bob:
            rest, _ = await drain(bob)
            assert rest == items[150:]


@async_test
async def test_live_push_without_gaps_across_the_drain(relay: RelayProcess) -> None:
    bob_key = new_key()
    async with logged_in(relay.url, 1) as (alice,):
        async with await RelayClient.login(relay.url, bob_key) as bob:
            await bob.publish()
        bob_user = bytes(bob_key.verify_key)
        before = [await send(alice, bob_user, b"old%d" % i) for i in range(50)]
        async with await RelayClient.login(relay.url, bob_key) as bob:
            # Keep sending while Bob subscribes: every message exactly once, in order.
            sender = asyncio.ensure_future(
                asyncio.gather(*(send(alice, bob_user, b"new%d" % i) for i in range(200)))
            )
            assert isinstance(await bob.call(Subscribe), Ok)
            seqs: list[int] = []
            synced = False
            while len(seqs) < 250:
                push = await bob.next_push()
                if isinstance(push, Synced):
                    synced = True
                    continue
                assert isinstance(push, Deliver)
                seqs.append(push.seq)
            during = await sender
            assert synced
            assert seqs == sorted({s.seq for s in before + list(during)})
            # A live push of a single message.
            one = await send(alice, bob_user, b"live")
            push = await bob.next_push(Deliver)
            assert (push.seq, push.body, push.sender) == (one.seq, b"live", alice.user)
            await bob.no_push()


@async_test
async def test_every_subscribed_connection_gets_pushes(relay: RelayProcess) -> None:
    bob_key = new_key()
    async with logged_in(relay.url, 1) as (alice,):
        phone = await RelayClient.login(relay.url, bob_key)
        laptop = await RelayClient.login(relay.url, bob_key)
        async with phone, laptop:
            await phone.publish()
            await drain(phone)
            await drain(laptop)
            stored = await send(alice, phone.user, b"both")
            for c in (phone, laptop):
                push = await c.next_push(Deliver)
                assert push.seq == stored.seq


@async_test
async def test_ack_deletes(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (alice, bob):
        s1, s2, s3 = [await send(alice, bob.user, b"%d" % i) for i in range(3)]
        assert isinstance(await bob.call(Ack, seqs=[s1.seq, s3.seq]), Ok)
        page = await bob.call(Fetch, user=bob.user)
        assert isinstance(page, Messages) and [m.seq for m in page.items] == [s2.seq]
        # Acking again is harmless (a retried ack whose Ok was lost).
        assert isinstance(await bob.call(Ack, seqs=[s1.seq, s2.seq]), Ok)
        page = await bob.call(Fetch, user=bob.user)
        assert page.items == []  # type: ignore[attr-defined]


@async_test
async def test_fetch_pages(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (alice, bob):
        stored = [await send(alice, bob.user, b"%d" % i) for i in range(7)]
        page = await bob.call(Fetch, user=bob.user, limit=3)
        assert isinstance(page, Messages) and page.more
        assert [m.seq for m in page.items] == [s.seq for s in stored[:3]]
        page = await bob.call(Fetch, user=bob.user, after=page.items[-1].seq, limit=4)
        assert isinstance(page, Messages) and not page.more
        assert [m.seq for m in page.items] == [s.seq for s in stored[3:]]


@async_test
async def test_ephemeral_is_pushed_not_stored(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (alice, bob):
        await drain(bob)
        ok = await alice.call(Send, to=bob.user, msg=msg_id(), body=b"typing", eph=True)
        assert isinstance(ok, Ok)
        push = await bob.next_push(Deliver)
        assert (push.seq, push.body, push.sender) == (0, b"typing", alice.user)
        page = await bob.call(Fetch, user=bob.user)
        assert isinstance(page, Messages) and page.items == []


@async_test
async def test_prekeys_publish_fetch_and_low_push(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 2, publish=False) as (alice, bob):
        status = await alice.publish(otk_ids=range(22))
        assert isinstance(status, PrekeyStatus) and status.otk_count == 22
        # Duplicates by key_id are ignored.
        status = await alice.publish(otk_ids=[0, 1, 22])
        assert isinstance(status, PrekeyStatus) and status.otk_count == 23
        taken = []
        for _ in range(3):
            bundle = await bob.call(FetchBundle, user=alice.user)
            assert isinstance(bundle, Bundle) and bundle.otk is not None
            taken.append(bundle.otk.key_id)
            assert bundle.spk.key_id == 1
        assert len(set(taken)) == 3
        await alice.no_push()
        bundle = await bob.call(FetchBundle, user=alice.user)  # leaves 19 < otk_low (20)
        low = await alice.next_push(PrekeysLow)
        assert low.otk_count == 19
        # Authed carries the count, so a client refills on connect.
        c = await RelayClient.connect(relay.url)
        async with c:
            await c.hello()
            authed = await c.auth(alice.key)  # type: ignore[arg-type]
            assert isinstance(authed, Authed) and authed.otk_count == 19


@async_test
async def test_bundle_without_one_time_prekeys(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (alice, bob):
        bundle = await bob.call(FetchBundle, user=alice.user)
        assert isinstance(bundle, Bundle) and bundle.otk is None


@async_test
async def test_sigterm_is_graceful(fresh_relay: RelayProcess) -> None:
    bob_key = new_key()
    alice = await RelayClient.login(fresh_relay.url, new_key())
    async with await RelayClient.login(fresh_relay.url, bob_key) as bob:
        await bob.publish()
    bob_user = bytes(bob_key.verify_key)
    # Many sends in flight when the signal arrives; every one answered Stored must survive.
    frames = [
        Send(id=alice.next_id(), to=bob_user, msg=os.urandom(16), body=b"%d" % i)
        for i in range(2000)
    ]
    answers = [asyncio.ensure_future(alice.request(f)) for f in frames]
    await asyncio.sleep(0.01)
    code = await asyncio.to_thread(fresh_relay.terminate)
    assert code == 0
    results = await asyncio.gather(*answers, return_exceptions=True)
    stored = {r.seq for r in results if isinstance(r, Stored)}
    # The rest were refused (unavailable) or cut off by the close; none is half-done.
    others = [r for r in results if not isinstance(r, Stored)]
    assert all(isinstance(r, (Error, ConnectionError)) for r in others), others[:3]
    assert all(r.error == "unavailable" for r in others if isinstance(r, Error))
    assert stored, "nothing was stored before the shutdown"
    await asyncio.wait_for(alice.ws.wait_closed(), 5)
    assert alice.ws.close_code == 1001
    await alice.close()
    fresh_relay.start()
    async with await RelayClient.login(fresh_relay.url, bob_key) as bob:
        items, _ = await drain(bob)
        assert stored <= {m.seq for m in items}
        assert [m.seq for m in items] == sorted(m.seq for m in items)
