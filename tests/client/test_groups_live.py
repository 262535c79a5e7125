"""Groups through a real relay with three members: add, post, remove — and the removed
member can't decrypt later posts; roles enforced by relay and clients; forged changes
rejected by both."""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest

from tenchat.client.connection import RelayError
from tenchat.client.events import ONLINE, ConnectionChanged, MessageAdded, TypingChanged
from tenchat.client.groups import GroupError
from tenchat.client.service import Client
from tenchat.common import frames as f
from tenchat.common.groups import ADMIN, GroupChange, sign_change
from tests.client.test_live import Recorder
from tests.support.clients import Group, People
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


async def texts(client: Client, group: bytes) -> list[str]:
    await client.sync()
    return [m.text for m in await client.page(group, limit=100)]


@pytest.mark.asyncio
async def test_three_members_add_post_remove(people: People, relay: RelayProcess) -> None:
    async with asyncio.timeout(120):
        alice, bob, carol = await people("alice", "bob", "carol")
        group = await alice.groups.create("ops", ["bob"])
        await alice.groups.add(group, ["@carol"])
        await alice.queue_text(group, "hello all")
        await alice.flush_outbox()
        assert await texts(bob, group) == ["hello all"]
        assert await texts(carol, group) == ["hello all"]
        info = await carol.groups.info(group)
        assert info.name == "ops" and info.my_role == "member"
        assert set(info.handles.values()) == {"alice", "bob", "carol"}

        await bob.queue_text(group, "bob here")
        await bob.flush_outbox()
        assert await texts(alice, group) == ["hello all", "bob here"]

        # carol is removed; she keeps her copy of the old sender keys...
        await alice.groups.remove(group, ["carol"])
        await bob.sync()  # bob sees the removal and starts a new sender key
        await alice.queue_text(group, "after carol left")
        await alice.flush_outbox()
        await bob.queue_text(group, "bob after")
        await bob.flush_outbox()
        assert (await texts(bob, group))[-1:] == ["after carol left"]
        assert (await texts(alice, group))[-1] == "bob after"
        # ...and learns nothing posted afterwards, from the relay or by decrypting.
        assert "after carol left" not in await texts(carol, group)
        # her client learns it the first time it tries to post
        await carol.queue_text(group, "still here?")
        with pytest.raises(GroupError, match="no longer a member"):
            await carol.flush_outbox()
        with pytest.raises(GroupError, match="not a member"):
            await carol.queue_text(group, "and now?")
        assert "still here?" not in await texts(alice, group)

        # Even a relay that handed carol the new ciphertext wouldn't help her: the new
        # sender keys were never sent to her.
        conn = await carol.connection()
        page = await (await alice.connection()).request(f.GroupInfo, group=group)
        assert isinstance(page, f.GroupHistory)
        rows = await alice.cache.messages.history(group, 10)
        mine = [r for r in rows if r.text == "after carol left"][0]
        with pytest.raises(RelayError) as err:
            await conn.request(f.GroupInfo, group=group)
        assert err.value.code == "forbidden"
        assert mine.status >= 1


@pytest.mark.asyncio
async def test_roles_are_enforced_by_relay_and_clients(people: People, relay: RelayProcess) -> None:
    async with asyncio.timeout(120):
        alice, bob, carol = await people("alice", "bob", "carol")
        group = await alice.groups.create("news", ["bob", "carol"], announce=True)
        await bob.sync()
        await carol.sync()
        # the client refuses first, with a clear reason
        with pytest.raises(GroupError, match="only admins may add"):
            await bob.groups.add(group, ["carol"])
        with pytest.raises(GroupError, match="only admins may post"):
            await bob.queue_text(group, "can I post?")
        # and the relay refuses the same when a client doesn't ask first
        state = await bob.groups.state(group)
        assert state is not None
        forged = GroupChange(group=group, version=state.version + 1, prev=state.head,
                             actor=bob.user, at=0, op="remove", members=[carol.user])
        with pytest.raises(RelayError) as err:
            await (await bob.connection()).request(
                f.GroupChangeReq, record=sign_change(forged, bob.identity.sign))
        assert err.value.code == "forbidden"
        with pytest.raises(RelayError) as err:
            await (await bob.connection()).request(
                f.GroupSend, group=group, msg=os.urandom(16), body=b"x")
        assert err.value.code == "forbidden"

        await alice.groups.set_role(group, "bob", ADMIN)
        await bob.sync()
        await bob.queue_text(group, "admin bob posts")
        await bob.flush_outbox()
        assert await texts(carol, group) == ["admin bob posts"]
        with pytest.raises(GroupError, match="can't remove an owner"):
            await bob.groups.remove(group, ["alice"])


@pytest.mark.asyncio
async def test_forged_change_pushed_by_a_hostile_relay_is_rejected(
        people: People, relay: RelayProcess) -> None:
    """A change the relay accepted can't be faked to a client: bob's copy checks the
    signature and the rules itself."""
    async with asyncio.timeout(120):
        alice, bob, mallory = await people("alice", "bob", "mallory")
        group = await alice.groups.create("g", ["bob"])
        await bob.sync()
        state = await bob.groups.state(group)
        assert state is not None
        # mallory (not a member) "adds" herself; and a record claiming alice's name
        # but signed by mallory
        for actor, signer in ((mallory, mallory), (alice, mallory)):
            change = GroupChange(group=group, version=state.version + 1, prev=state.head,
                                 actor=actor.user, at=0, op="add", members=[mallory.user])
            record = sign_change(change, signer.identity.sign)
            await bob.receive([f.GroupDeliver(group=group, gseq=10_000, msg=os.urandom(16),
                                              sender=actor.user, at=0, body=record,
                                              change=True)])
            after = await bob.groups.state(group)
            assert after is not None and mallory.user not in after.roles
            assert after.version == state.version


@pytest.mark.asyncio
async def test_typing_in_a_group_reaches_the_members_online_and_is_never_stored(
        group: Group, relay: RelayProcess) -> None:
    async with asyncio.timeout(90):
        alice, (bob, carol), gid = group.owner, group.members, group.id
        await alice.queue_text(gid, "keys first")  # shares alice's sender key
        await alice.flush_outbox()
        for c in (bob, carol):
            assert await texts(c, gid) == ["keys first"]
        recorders = {c: Recorder(c) for c in (alice, bob, carol)}
        tasks = [asyncio.create_task(c.run()) for c in (alice, bob, carol)]
        try:
            for rec in recorders.values():
                await rec.wait_for(lambda e: isinstance(e, ConnectionChanged) and
                                   e.state == ONLINE)
            logged = relay_log_rows(relay)
            await alice.send_typing(gid, True)
            for c in (bob, carol):
                event = await recorders[c].wait_for(lambda e: isinstance(e, TypingChanged))
                assert event == TypingChanged(gid, True, alice.user)
            await alice.send_typing(gid, False)
            for c in (bob, carol):
                await recorders[c].wait_for(lambda e: isinstance(e, TypingChanged) and
                                            not e.active)
            assert relay_log_rows(relay) == logged  # the relay kept nothing
            # Typing off: the group hears nothing either.
            await alice.set_setting("typing", False)
            before = len(recorders[bob].events)
            await alice.send_typing(gid, True)
            # A barrier, not a sleep: a post sent after it on the same connection reaches
            # bob after anything the typing signal would have made.
            await alice.queue_text(gid, "barrier")
            await alice.flush_outbox()
            await recorders[bob].wait_for(lambda e: isinstance(e, MessageAdded) and
                                          e.message.text == "barrier")
            assert not any(isinstance(e, TypingChanged)
                           for e in recorders[bob].events[before:])
            # ...and no message came of it (bob is live: his cache is current).
            assert [m.text for m in await bob.page(gid, limit=100)] == ["keys first",
                                                                         "barrier"]
        finally:
            for c in (alice, bob, carol):
                await c.close()
            await asyncio.gather(*tasks, return_exceptions=True)


def relay_log_rows(relay: RelayProcess) -> int:
    db = sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM group_log").fetchone()[0])
    finally:
        db.close()


@pytest.mark.asyncio
async def test_a_receipt_naming_a_group_counts_only_from_a_member(people: People) -> None:
    """mallory is not in the group: a 1:1 receipt from her naming it (and alice's group
    message) changes nothing; bob's, a member's, counts (issue 21, item 5)."""
    from tenchat.common import content as c

    alice, bob, mallory = await people("alice", "bob", "mallory")
    group = await alice.groups.create("ops", ["bob"])
    await alice.queue_text(group, "members only")
    await alice.flush_outbox()
    mine = [r for r in await alice.cache.messages.history(group, 10)
            if r.text == "members only"][0]
    await alice.resolve("mallory")  # a contact, so her 1:1 messages are read
    await mallory.resolve("alice")
    async with mallory.cache.transaction():
        await mallory.queue_receipt(alice.user, c.READ, [mine.id], group=group)
    await mallory.flush_outbox()
    await alice.sync()
    assert await alice.cache.messages.seen_by(group, mine.id) == 0
    assert (await alice.cache.messages.get(group, mine.id)).status == mine.status  # type: ignore[union-attr]

    async with bob.cache.transaction():
        await bob.queue_receipt(alice.user, c.READ, [mine.id], group=group)
    await bob.flush_outbox()
    await alice.sync()
    assert await alice.cache.messages.seen_by(group, mine.id) == 1
