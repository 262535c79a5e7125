"""Groups end to end against a real relay: signed changes, one log row per message,
pushes to online members, catch-up from a cursor, acks, removal, roles, announcement
groups, forged changes, and the verifiable chain from group_info."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from tenchat.common.frames import (
    Error,
    GroupAck,
    GroupChangeReq,
    GroupDeliver,
    GroupHistory,
    GroupInfo,
    GroupList,
    Groups,
    GroupSend,
    GroupStored,
    Ok,
)
from tenchat.common.groups import ADMIN, MEMBER, OWNER, GroupState, SignedChange, record_hash
from tests.support.groups import TestGroup, drain_all
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, async_test, logged_in, msg_id

pytestmark = pytest.mark.slow


def db_rows(relay: RelayProcess, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    """Read the relay's database while it runs (read-only; WAL allows it)."""
    path = Path(relay.data_dir) / "relay.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return list(db.execute(sql, params))


async def post(c: RelayClient, g: TestGroup, body: bytes, mid: bytes | None = None) -> GroupStored:
    stored = await c.call(GroupSend, group=g.id, msg=mid or msg_id(), body=body)
    assert isinstance(stored, GroupStored), stored
    return stored


async def expect_error(c: RelayClient, code: str, frame_type: type, **fields: object) -> None:
    reply = await c.call(frame_type, **fields)
    assert isinstance(reply, Error), reply
    assert reply.error == code, reply
    # The connection goes on.
    assert isinstance(await c.call(GroupList), Groups)


async def gmsg(c: RelayClient) -> GroupDeliver:
    return await c.next_push(GroupDeliver)


async def no_group_push(c: RelayClient, wait: float = 0.4) -> None:
    try:
        frame = await c.next_push(GroupDeliver, timeout=wait)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected push {frame!r}")


@async_test
async def test_three_members_fan_out_catch_up_ack_and_remove(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        await drain_all(alice)
        await drain_all(bob)
        g = TestGroup()
        created = await g.change(alice, "create", name="three", members=[bob.user])
        for c in (alice, bob):  # online members get the change itself
            push = await gmsg(c)
            assert (push.gseq, push.change, push.sender) == (created.gseq, True, alice.user)
            assert push.body == g.records[0] and push.msg == record_hash(g.records[0])[:16]
        added = await g.change(alice, "add", members=[carol.user])
        assert added.gseq > created.gseq
        for c in (alice, bob):
            assert (await gmsg(c)).gseq == added.gseq

        # Carol is offline: three posts are stored once each and pushed to the online two.
        sent = [await post(alice if i % 2 else bob, g, f"p{i}".encode()) for i in range(3)]
        for c in (alice, bob):  # the sender's own connections get it too
            got = [await gmsg(c) for _ in sent]
            assert [(m.gseq, m.body) for m in got] == [(s.gseq, f"p{i}".encode())
                                                       for i, s in enumerate(sent)]
        rows = db_rows(relay, "SELECT gseq, change FROM group_log WHERE grp = ? ORDER BY gseq",
                       (g.id,))
        assert rows == [(created.gseq, 1), (added.gseq, 1)] + [(s.gseq, 0) for s in sent]
        assert db_rows(relay, "SELECT count(*) FROM group_members WHERE grp = ?", (g.id,)) == [(3,)]

        # Carol catches up from her cursor: the add entry first, then the posts, in order.
        items, _ = await drain_all(carol)
        assert [(m.gseq, m.change) for m in items] == [(added.gseq, True)] + [
            (s.gseq, False) for s in sent
        ]
        assert items[0].body == g.records[1]
        summary = await carol.call(GroupList)
        assert isinstance(summary, Groups)
        [mine] = summary.groups
        assert (mine.group, mine.version, mine.role, mine.cursor, mine.last) == (
            g.id, 2, MEMBER, added.gseq - 1, sent[-1].gseq)

        # Ack moves the cursor (never past the log's end); a reconnect then brings nothing.
        assert isinstance(await carol.call(GroupAck, group=g.id, upto=sent[-1].gseq + 10**9), Ok)
        [mine] = (await carol.call(GroupList)).groups  # type: ignore[attr-defined]
        assert mine.cursor == sent[-1].gseq
        assert isinstance(await carol.call(GroupAck, group=g.id, upto=1), Ok)  # never back
        assert carol.key is not None
        carol_key = carol.key
        await carol.close()
        carol = await RelayClient.login(relay.url, carol_key)
        items, _ = await drain_all(carol)
        assert items == []

        # Live: a new post reaches carol's subscription too.
        live = await post(bob, g, b"live")
        for c in (alice, bob, carol):
            assert (await gmsg(c)).gseq == live.gseq

        # Remove carol: she gets neither the removal nor anything posted afterwards.
        removed = await g.change(alice, "remove", members=[carol.user])
        for c in (alice, bob):
            assert (await gmsg(c)).gseq == removed.gseq
        after = await post(alice, g, b"after removal")
        for c in (alice, bob):
            assert (await gmsg(c)).gseq == after.gseq
        await no_group_push(carol)
        await carol.close()
        carol = await RelayClient.login(relay.url, carol_key)
        items, _ = await drain_all(carol)
        assert items == []
        await expect_error(carol, "forbidden", GroupInfo, group=g.id)
        await expect_error(carol, "forbidden", GroupSend, group=g.id, msg=msg_id(), body=b"x")
        await expect_error(carol, "forbidden", GroupAck, group=g.id, upto=after.gseq)
        assert (await carol.call(GroupList)).groups == []  # type: ignore[attr-defined]
        await carol.close()


@async_test
async def test_group_send_dedupe_and_one_row_per_message(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 2) as (alice, bob):
        g = TestGroup()
        await g.change(alice, "create", name="dedupe", members=[bob.user])
        mid = msg_id()
        first = await post(alice, g, b"once", mid)
        again = await post(alice, g, b"once", mid)
        twins = await asyncio.gather(*(post(alice, g, b"x", msg_id()) for _ in range(20)))
        assert (again.gseq, again.at) == (first.gseq, first.at)
        assert len({t.gseq for t in twins}) == 20
        rows = db_rows(relay, "SELECT count(*) FROM group_log WHERE grp = ? AND change = 0",
                       (g.id,))
        assert rows == [(21,)]
        # The same msg id from another member is another message.
        other = await post(bob, g, b"bob", mid)
        assert other.gseq != first.gseq


@async_test
async def test_roles(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 4) as (owner, admin, member, outsider):
        g = TestGroup()
        await g.change(owner, "create", name="roles", members=[admin.user, member.user])
        await g.change(owner, "role", members=[admin.user], role=ADMIN)
        # A member can't add or remove.
        for op, who in (("add", outsider.user), ("remove", admin.user)):
            record = g.record(member.key, op, members=[who])
            await expect_error(member, "forbidden", GroupChangeReq, record=record)
        # An admin can't remove the owner, nor change roles.
        record = g.record(admin.key, "remove", members=[owner.user])
        await expect_error(admin, "forbidden", GroupChangeReq, record=record)
        record = g.record(admin.key, "role", members=[member.user], role=ADMIN)
        await expect_error(admin, "forbidden", GroupChangeReq, record=record)
        # An outsider gets forbidden for everything (the group's existence stays hidden).
        record = g.record(outsider.key, "add", members=[outsider.user])
        await expect_error(outsider, "forbidden", GroupChangeReq, record=record)
        await expect_error(outsider, "forbidden", GroupInfo, group=g.id)
        await expect_error(outsider, "forbidden", GroupInfo, group=os.urandom(16))
        # An admin may add and remove members; the owner promotes.
        await g.change(admin, "add", members=[outsider.user])
        await g.change(admin, "remove", members=[outsider.user])
        await g.change(owner, "role", members=[member.user], role=ADMIN)
        await g.change(admin, "meta", topic="new topic")
        # Ownership moves, it isn't shared.
        await g.change(owner, "role", members=[admin.user], role=OWNER)
        history = await admin.call(GroupInfo, group=g.id)
        assert isinstance(history, GroupHistory)
        state = GroupState.from_records(g.id, history.records)
        assert state.roles == {admin.user: OWNER, owner.user: ADMIN, member.user: ADMIN}
        assert state.topic == "new topic" and state.version == g.version == history.version


@async_test
async def test_announcement_group(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (owner, admin, member):
        g = TestGroup()
        await g.change(owner, "create", name="news", announce=True,
                       members=[admin.user, member.user])
        await g.change(owner, "role", members=[admin.user], role=ADMIN)
        await expect_error(member, "forbidden", GroupSend, group=g.id, msg=msg_id(), body=b"x")
        await post(admin, g, b"from an admin")
        await post(owner, g, b"from the owner")
        await g.change(owner, "meta", announce=False)
        await post(member, g, b"now anyone")


@async_test
async def test_forged_and_stale_changes_change_nothing(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        g = TestGroup()
        await g.change(alice, "create", name="forge", members=[bob.user])
        before = db_rows(relay, "SELECT version, head, last_gseq FROM groups WHERE id = ?",
                         (g.id,))
        add_carol = {"members": [carol.user]}
        # Signed by a non-admin member.
        await expect_error(bob, "forbidden", GroupChangeReq, record=g.record(bob.key, "add",
                                                                            **add_carol))
        # Alice's valid record sent by bob's connection: the actor must be the sender.
        await expect_error(bob, "forbidden", GroupChangeReq,
                           record=g.record(alice.key, "add", **add_carol))
        # A bad signature.
        import msgspec

        good = g.record(alice.key, "add", **add_carol)
        signed = msgspec.msgpack.decode(good, type=SignedChange)
        forged = msgspec.msgpack.encode(SignedChange(change=signed.change,
                                                     sig=bytes(64)))
        await expect_error(alice, "bad_signature", GroupChangeReq, record=forged)
        # Signed by bob but claiming alice as the actor: the signature doesn't verify.
        assert bob.key is not None
        lie = msgspec.msgpack.encode(SignedChange(
            change=signed.change,
            sig=bob.key.sign(b"tenchat/group-change/v1\x00" + signed.change).signature))
        await expect_error(alice, "bad_signature", GroupChangeReq, record=lie)
        # Wrong version, wrong previous hash, a second create.
        await expect_error(alice, "protocol", GroupChangeReq,
                           record=g.record(alice.key, "add", version=5, **add_carol))
        await expect_error(alice, "protocol", GroupChangeReq,
                           record=g.record(alice.key, "add", prev=os.urandom(32), **add_carol))
        await expect_error(alice, "protocol", GroupChangeReq,
                           record=g.record(alice.key, "create", version=1, prev=bytes(32),
                                           name="again"))
        # Garbage.
        await expect_error(alice, "malformed", GroupChangeReq, record=b"\x81\xa1x\x01")
        await expect_error(alice, "malformed", GroupChangeReq,
                           record=g.record(alice.key, "add", members=[bob.user]))  # already in
        # A create without a name; a change to a group that doesn't exist.
        other = TestGroup()
        await expect_error(alice, "malformed", GroupChangeReq,
                           record=other.record(alice.key, "create", name=""))
        await expect_error(alice, "forbidden", GroupChangeReq,
                           record=other.record(alice.key, "add", **add_carol))
        # Nothing changed.
        after = db_rows(relay, "SELECT version, head, last_gseq FROM groups WHERE id = ?",
                        (g.id,))
        assert after == before
        assert db_rows(relay, "SELECT count(*) FROM groups WHERE id = ?", (other.id,)) == [(0,)]
        history = await bob.call(GroupInfo, group=g.id)
        assert isinstance(history, GroupHistory) and history.records == g.records
        # And the real change still goes through.
        await g.change(alice, "add", **add_carol)


@async_test
async def test_concurrent_changes_one_wins(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 4) as (alice, bob, carol, dave):
        g = TestGroup()
        await g.change(alice, "create", name="race", members=[bob.user])
        await g.change(alice, "role", members=[bob.user], role=ADMIN)
        r1 = g.record(alice.key, "add", members=[carol.user])
        r2 = g.record(bob.key, "add", members=[dave.user])
        a1, a2 = await asyncio.gather(alice.call(GroupChangeReq, record=r1),
                                      bob.call(GroupChangeReq, record=r2))
        outcomes = sorted(type(a).__name__ for a in (a1, a2))
        assert outcomes == ["Error", "GroupStored"], (a1, a2)
        loser = a1 if isinstance(a1, Error) else a2
        assert loser.error == "protocol"  # type: ignore[attr-defined]
        g.applied(r1 if isinstance(a1, GroupStored) else r2)
        history = await alice.call(GroupInfo, group=g.id)
        assert isinstance(history, GroupHistory) and history.version == 3
        GroupState.from_records(g.id, history.records)  # a valid chain


@async_test
async def test_group_info_pages_and_verifies(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 2) as (alice, bob):
        g = TestGroup()
        await g.change(alice, "create", name="chain", members=[bob.user])
        for i in range(5):
            await g.change(alice, "meta", topic=f"topic {i}")
        history = await bob.call(GroupInfo, group=g.id)
        assert isinstance(history, GroupHistory)
        assert (history.version, history.records, history.more) == (6, g.records, False)
        state = GroupState.from_records(g.id, history.records)
        assert state.roles == {alice.user: OWNER, bob.user: MEMBER}
        assert (state.name, state.topic, state.head) == ("chain", "topic 4", g.head)
        tail = await bob.call(GroupInfo, group=g.id, after_version=4)
        assert isinstance(tail, GroupHistory) and tail.records == g.records[4:]


@async_test
async def test_removed_member_reconnecting_mid_stream_gets_nothing_after(
    relay: RelayProcess,
) -> None:
    """Entries before the removal are caught up; none after it, online or not."""
    async with logged_in(relay.url, 2) as (alice, bob):
        assert bob.key is not None
        bob_key = bob.key
        await bob.close()
        g = TestGroup()
        await g.change(alice, "create", name="gone", members=[bob.user])
        for i in range(3):
            await post(alice, g, f"b{i}".encode())
        await g.change(alice, "remove", members=[bob.user])
        for i in range(3):
            await post(alice, g, f"a{i}".encode())
        bob = await RelayClient.login(relay.url, bob_key)
        items, _ = await drain_all(bob)
        # Not a member any more: the log is not his to read, even the part before.
        assert items == []
        await bob.close()


@async_test
async def test_member_added_while_subscribed_gets_the_add_and_what_follows(
    relay: RelayProcess,
) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, dave):
        g = TestGroup()
        await g.change(alice, "create", name="live add", members=[bob.user])
        early = await post(alice, g, b"before dave")
        await drain_all(dave)  # online, not yet a member
        await no_group_push(dave)
        added = await g.change(alice, "add", members=[dave.user])
        push = await gmsg(dave)
        assert (push.gseq, push.change, push.body) == (added.gseq, True, g.records[-1])
        later = await post(bob, g, b"after dave")
        push = await gmsg(dave)
        assert (push.gseq, push.body) == (later.gseq, b"after dave")
        assert early.gseq < added.gseq  # nothing from before the add
        # He leaves: nothing more reaches him.
        await g.change(dave, "leave")
        await post(bob, g, b"after leaving")
        await no_group_push(dave)


@async_test
async def test_ephemeral_group_send_reaches_live_members_only_and_stores_nothing(
    relay: RelayProcess,
) -> None:
    """Typing indicators: pushed with gseq 0 to the other members online, never logged,
    never delivered later, refused to a non-member."""
    async with logged_in(relay.url, 4) as (alice, bob, carol, outsider):
        for c in (alice, bob, outsider):
            await drain_all(c)
        g = TestGroup()
        await g.change(alice, "create", name="typing", members=[bob.user, carol.user])
        for c in (alice, bob):
            await gmsg(c)  # the create
        assert carol.key is not None
        carol_key = carol.key
        await carol.close()  # offline while alice types
        rows_before = db_rows(relay, "SELECT count(*) FROM group_log WHERE grp = ?", (g.id,))

        reply = await alice.call(GroupSend, group=g.id, msg=msg_id(), body=b"sealed typing",
                                 eph=True)
        assert isinstance(reply, Ok), reply
        push = await gmsg(bob)
        assert (push.gseq, push.sender, push.body, push.change) == (
            0, alice.user, b"sealed typing", False)
        await no_group_push(alice)  # not echoed to the sender
        assert db_rows(relay, "SELECT count(*) FROM group_log WHERE grp = ?",
                       (g.id,)) == rows_before

        # A stored post after it still comes in order, with its own gseq.
        stored = await post(alice, g, b"real")
        assert (await gmsg(bob)).gseq == stored.gseq

        # carol comes back: the stored post, not the typing indicator.
        carol = await RelayClient.login(relay.url, carol_key)
        items, _ = await drain_all(carol)
        assert [m.body for m in items if not m.change] == [b"real"]
        await carol.close()

        await expect_error(outsider, "forbidden", GroupSend, group=g.id, msg=msg_id(),
                           body=b"x", eph=True)
        await no_group_push(bob)
