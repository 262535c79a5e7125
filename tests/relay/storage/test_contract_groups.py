"""Storage contract: groups — signed changes, the log, cursors, and the group events."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from nacl.signing import SigningKey

from tenchat.common.groups import decode_signed
from tenchat.relay.storage import GroupEntry, MembersChanged, Store, Stored
from tests.support.groups import TestGroup
from tests.support.wsclient import async_test, user_of

from .conftest import Clock, refused


async def change(store: Store, g: TestGroup, key: SigningKey, op: str, **fields: Any) -> Stored:
    record = g.record(key, op, **fields)
    stored = await store.group_change(decode_signed(record)[0], record)
    g.applied(record)
    return stored


async def turns() -> None:
    for _ in range(3):  # the listeners run two loop turns after the commit
        await asyncio.sleep(0)


@async_test
async def test_create_add_post_ack(store: Store) -> None:
    events: list[MembersChanged | GroupEntry] = []
    store.on_group_commit = events.extend
    owner, bob_key = SigningKey.generate(), SigningKey.generate()
    alice, bob = user_of(owner), user_of(bob_key)
    g = TestGroup()
    created = await change(store, g, owner, "create", name="g", members=[bob])
    head = await store.group_head(g.id, bob)
    assert head is not None and head.version == 1 and head.role == "member"
    assert await store.group_head(g.id, os.urandom(32)) is None
    assert await store.group_records(g.id, 0, 10) == g.records
    assert set(await store.member_groups(alice)) == {g.id}
    [summary] = await store.group_summaries(bob)
    assert (summary.group, summary.version, summary.role) == (g.id, 1, "member")
    msg = os.urandom(16)
    posted = await store.group_post(g.id, bob, msg, b"hello", 0)
    assert posted.seq > created.seq
    assert await store.group_post(g.id, bob, msg, b"hello", 0) == posted  # a retry
    entries = await store.group_pending(g.id, alice, 0, 10)
    assert [(e.gseq, e.change) for e in entries] == [(created.seq, True), (posted.seq, False)]
    assert entries[1].body == b"hello" and entries[1].sender == bob
    assert await store.group_pending(g.id, os.urandom(32), 0, 10) == []  # not a member
    await store.group_ack(alice, g.id, posted.seq + 100)  # never past the log's end
    assert (await store.member_groups(alice))[g.id] == posted.seq
    await store.group_ack(alice, g.id, 0)  # never backwards
    assert (await store.member_groups(alice))[g.id] == posted.seq
    await turns()
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["MembersChanged", "GroupEntry", "GroupEntry"]
    assert isinstance(events[0], MembersChanged) and events[0].roles[bob] == "member"
    assert events[0].cursor == created.seq - 1  # new members get the entry adding them


@async_test
async def test_non_members_are_refused(store: Store) -> None:
    owner = SigningKey.generate()
    g = TestGroup()
    await change(store, g, owner, "create", name="g")
    stranger = os.urandom(32)
    await refused(store.group_post(g.id, stranger, os.urandom(16), b"x", 0), "forbidden")
    await refused(store.group_ack(stranger, g.id, 1), "forbidden")
    outsider = SigningKey.generate()
    record = g.record(outsider, "add", members=[os.urandom(32)])
    await refused(store.group_change(decode_signed(record)[0], record), "forbidden")


@async_test
async def test_a_removed_member_reads_nothing_after(store: Store) -> None:
    owner, bob_key = SigningKey.generate(), SigningKey.generate()
    bob = user_of(bob_key)
    g = TestGroup()
    await change(store, g, owner, "create", name="g", members=[bob])
    await change(store, g, owner, "remove", members=[bob])
    assert await store.group_head(g.id, bob) is None
    assert await store.group_pending(g.id, bob, 0, 10) == []
    assert await store.member_groups(bob) == {}


@async_test
async def test_expiring_entries(store: Store, clock: Clock) -> None:
    owner = SigningKey.generate()
    g = TestGroup()
    await change(store, g, owner, "create", name="g")
    alice = user_of(owner)
    await store.group_post(g.id, alice, os.urandom(16), b"soon", clock.now + 10)
    assert len(await store.group_pending(g.id, alice, 0, 10)) == 2
    clock.now += 10
    assert len(await store.group_pending(g.id, alice, 0, 10)) == 1
    assert await store.sweep(clock.now, 100) == 1
    assert (await store.stats())["group_entries"] == 1


@async_test
async def test_announce_groups_take_posts_from_admins_only(store: Store) -> None:
    owner, bob_key = SigningKey.generate(), SigningKey.generate()
    bob = user_of(bob_key)
    g = TestGroup()
    await change(store, g, owner, "create", name="news", announce=True, members=[bob])
    await refused(store.group_post(g.id, bob, os.urandom(16), b"x", 0), "forbidden")
    await store.group_post(g.id, user_of(owner), os.urandom(16), b"x", 0)


@async_test
async def test_a_change_must_follow_the_head(store: Store) -> None:
    owner = SigningKey.generate()
    g = TestGroup()
    await change(store, g, owner, "create", name="g")
    stale = g.record(owner, "meta", version=1, name="again")
    await refused(store.group_change(decode_signed(stale)[0], stale), "protocol")
    assert await store.group_records(g.id, 0, 10) == g.records  # nothing changed
