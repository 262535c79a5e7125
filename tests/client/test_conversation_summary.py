"""The conversation list's summary (each conversation's latest message and unread count,
kept in its row by the cache's triggers, migration 14) always equals what the messages
themselves say: after receives, sends, status changes, reads, edits, deletes, expiry,
group messages, blocking, and after the migration fills it from an older cache."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tenchat.client.cache import (
    DELIVERED,
    FILENAME,
    MIGRATIONS,
    PENDING,
    READ,
    SENT,
    Cache,
    LastMessage,
    MessageRow,
)
from tenchat.client.cache.schema import _migrate_one
from tenchat.client.service import Client
from tests.conftest import PASSPHRASE
from tests.support.cache_file import open_cache_file
from tests.support.inproc import InProcRelay

pytestmark = pytest.mark.asyncio

BOB, CAROL, DAVE, GROUP = b"b" * 32, b"c" * 32, b"d" * 32, b"g" * 16
SUMMARY_MIGRATION = 14


async def expected(cache: Cache) -> list[tuple[bytes, LastMessage | None, int]]:
    """The list as a full read of the messages computes it, in the list's order."""
    db = cache._db
    convs = await db.execute_fetchall(
        "SELECT c.peer, c.pinned, ct.handle FROM conversations c "
        "LEFT JOIN contacts ct ON ct.user = c.peer")
    out = []
    for peer, pinned, handle in convs:
        latest = await db.execute_fetchall(
            "SELECT id, rowid, outgoing, text, sent_at, received_at, status, sender, edited, "
            "deleted FROM messages WHERE peer=? ORDER BY rowid DESC LIMIT 1", (peer,))
        last = None
        if latest:
            r = latest[0]
            last = LastMessage(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], r[7],
                               bool(r[8]), bool(r[9]))
        [(unread,)] = await db.execute_fetchall(
            "SELECT count(*) FROM messages WHERE peer=? AND outgoing=0 AND status<?",
            (peer, READ))
        out.append((pinned, last.key if last else 0, handle or "", peer, last, unread))
    out.sort(key=lambda t: (-t[0], -t[1], t[2]))
    return [(peer, last, unread) for *_, peer, last, unread in out]


async def listed(cache: Cache) -> list[tuple[bytes, LastMessage | None, int]]:
    return [(row.peer, row.last, row.unread) for row in await cache.conversations.all()]


async def assert_exact(cache: Cache) -> list[tuple[bytes, LastMessage | None, int]]:
    got = await listed(cache)
    assert got == await expected(cache)
    return got


def msg(peer: bytes, text: str, at: int, *, outgoing: bool = False, status: int = DELIVERED,
        sender: bytes | None = None, expires_at: int = 0) -> MessageRow:
    return MessageRow(os.urandom(16), peer, outgoing, text, at, at, status, sender=sender,
                      expires_at=expires_at)


async def test_the_summary_follows_every_write_in_the_cache(tmp_path: Path) -> None:
    cache = await Cache.open(tmp_path, os.urandom(32))
    m = cache.messages
    async with cache.transaction():
        await cache.conversations.ensure(CAROL)  # no messages yet
        a = msg(BOB, "one", 1)
        b = msg(BOB, "two", 2)
        for row in (a, b):
            await m.add(row, shown=False)  # received
    got = await assert_exact(cache)
    assert got[0][1] is not None and got[0][1].text == "two" and got[0][2] == 2
    assert got[1] == (CAROL, None, 0)

    async with cache.transaction():  # sent: pending, then sent, delivered, read
        mine = msg(BOB, "three", 3, outgoing=True, status=PENDING)
        await m.add(mine, shown=True)
    await assert_exact(cache)
    for status in (SENT, DELIVERED, READ):
        async with cache.transaction():
            assert await m.raise_status(BOB, [mine.id], status) == [mine.id]
        [(_, last, _), _] = await assert_exact(cache)
        assert last is not None and last.status == status and last.outgoing

    async with cache.transaction():  # read here
        await m.mark_read(BOB, [a.id])
    assert (await assert_exact(cache))[0][2] == 1
    async with cache.transaction():
        await m.mark_read(BOB, [b.id, a.id])  # one already read: counted once
    assert (await assert_exact(cache))[0][2] == 0

    async with cache.transaction():  # an edit of an older message: the preview stays
        assert await m.edit(BOB, a.id, BOB, False, "one, edited")
    assert (await assert_exact(cache))[0][1].text == "three"  # type: ignore[union-attr]
    async with cache.transaction():  # an edit and a delete of the latest
        assert await m.edit(BOB, mine.id, None, False, "three, edited")
    last = (await assert_exact(cache))[0][1]
    assert last is not None and (last.text, last.edited) == ("three, edited", True)
    async with cache.transaction():
        assert await m.delete(BOB, mine.id, None, False)
    last = (await assert_exact(cache))[0][1]
    assert last is not None and last.deleted and last.text == ""

    async with cache.transaction():  # CAROL writes: her conversation goes first
        await cache.conversations.set_flag(BOB, "pinned", True)
        await m.add(msg(CAROL, "hi", 5), shown=False)
    got = await assert_exact(cache)
    assert [peer for peer, *_ in got] == [BOB, CAROL]  # pinned first all the same

    # group messages: peer is the group, sender the author; only the author edits
    async with cache.transaction():
        g1 = msg(GROUP, "from bob", 6, sender=BOB)
        g2 = msg(GROUP, "from carol", 7, sender=CAROL)
        for row in (g1, g2):
            await m.add(row, shown=False)
        assert not await m.edit(GROUP, g2.id, BOB, True, "not bob's")
        assert await m.edit(GROUP, g2.id, CAROL, True, "from carol, edited")
    got = await assert_exact(cache)
    [group] = [t for t in got if t[0] == GROUP]
    assert group[1] is not None and group[1].sender == CAROL and group[2] == 2

    # expiry: the latest goes, the one before it becomes the latest; then none is left
    async with cache.transaction():
        d1 = msg(CAROL, "stays a while", 8, expires_at=2_000)
        d2 = msg(CAROL, "gone first", 9, expires_at=1_000)
        only = msg(DAVE, "all there was", 10, expires_at=1_000)
        for row in (d1, d2, only):
            await m.add(row, shown=False)
    async with cache.transaction():  # the clock moved to 1,000 ms
        assert {ref.id for ref in await m.purge_expired(1_000)} == {d2.id, only.id}
    got = await assert_exact(cache)
    [carol] = [t for t in got if t[0] == CAROL]
    assert carol[1] is not None and carol[1].id == d1.id and carol[2] == 2
    assert got[-1] == (DAVE, None, 0)  # nothing left: sorts as a conversation without any
    async with cache.transaction():  # both at once, in one statement
        await m.add(msg(DAVE, "a", 11, expires_at=3_000), shown=False)
        await m.add(msg(DAVE, "b", 12, expires_at=3_000), shown=False)
        assert len(await m.purge_expired(3_000)) == 3  # d1 too
    got = await assert_exact(cache)
    assert got[-1] == (DAVE, None, 0)
    await cache.close()


async def test_the_migration_fills_the_summary_from_an_older_cache(tmp_path: Path) -> None:
    key = os.urandom(32)
    db = open_cache_file(tmp_path / FILENAME, key)  # encrypted, as the client opens it
    for number, script in enumerate(MIGRATIONS[:SUMMARY_MIGRATION - 1], start=1):
        _migrate_one(db, script, number)
    rows = [(os.urandom(16), peer, out, text, at, at, status)
            for peer, out, text, at, status in (
                (BOB, 0, "one", 1, DELIVERED), (BOB, 1, "two", 2, SENT),
                (CAROL, 0, "hi", 3, READ), (CAROL, 0, "unread", 4, DELIVERED),
                (DAVE, 0, "expired", 5, DELIVERED))]
    db.executemany("INSERT INTO messages (id, peer, outgoing, text, sent_at, received_at, "
                   "status) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    # schema 13 left a conversation whose latest message expired pointing at nothing
    db.execute("DELETE FROM messages WHERE text IN ('unread', 'expired')")
    db.execute("INSERT INTO conversations (peer) VALUES (?)", (GROUP,))
    db.commit()
    db.close()
    cache = await Cache.open(tmp_path, key)
    got = await assert_exact(cache)
    assert [(peer, last and last.text, unread) for peer, last, unread in got] == [
        (CAROL, "hi", 0), (BOB, "two", 1), (DAVE, None, 0), (GROUP, None, 0)]
    async with cache.transaction():  # and the triggers keep it from there
        await cache.messages.add(msg(DAVE, "back", 6), shown=False)
    assert (await assert_exact(cache))[0][0] == DAVE
    await cache.close()


@pytest_asyncio.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Client, Client]]:
    """alice and bob, registered on an in-process relay."""
    relay = await InProcRelay(tmp_path / "relay").start()
    alice = await Client.create(tmp_path / "alice", relay.url, "alice", PASSPHRASE)
    bob = await Client.create(tmp_path / "bob", relay.url, "bob", PASSPHRASE)
    try:
        yield alice, bob
    finally:
        await alice.close()
        await bob.close()
        if relay.server is not None:
            await relay.stop()


async def test_the_list_stays_exact_through_a_conversation(
        pair: tuple[Client, Client]) -> None:
    """Through the client's own calls, two real clients and a relay in this process."""
    alice, bob = pair

    async def bobs_view() -> tuple[str | None, int, bool, bool]:
        await assert_exact(bob.cache)
        [conv] = [c for c in await bob.conversations() if c.peer == alice.user]
        assert conv.last is not None
        return conv.last.text, conv.unread, conv.last.edited, conv.last.deleted

    await alice.send_text("@bob", "first")
    second = await alice.send_text("@bob", "second")
    await assert_exact(alice.cache)
    await bob.sync()  # received
    assert await bobs_view() == ("second", 2, False, False)
    await alice.edit(bob.user, second.id, "second, edited")
    await bob.sync()
    assert await bobs_view() == ("second, edited", 2, True, False)
    assert await bob.mark_read(alice.user) == 2  # read
    assert await bobs_view() == ("second, edited", 0, True, False)
    await alice.sync()  # the read receipt: alice's latest is read
    [a_conv] = await alice.conversations()
    assert a_conv.last is not None and a_conv.last.status == READ
    await assert_exact(alice.cache)
    await alice.delete(bob.user, second.id)
    await bob.sync()
    assert await bobs_view() == ("", 0, True, True)
    await bob.send_text("@alice", "reply")  # sent
    assert await bobs_view() == ("reply", 0, False, False)

    await bob.set_blocked("@alice", True)  # blocked: nothing heard, nothing counted
    await alice.send_text("@bob", "can you hear me")
    await bob.sync()
    assert await bobs_view() == ("reply", 0, False, False)
    await bob.set_blocked("@alice", False)
    [conv] = [c for c in await bob.conversations() if c.peer == alice.user]
    assert not conv.blocked

    await alice.set_timer(bob.user, 60)  # expiry, by moving the clock past it
    await alice.send_text("@bob", "vanishing")
    await bob.sync()
    assert (await bobs_view())[:2] == ("vanishing", 1)
    async with bob.cache.transaction():
        assert len(await bob.cache.messages.purge_expired(2**62)) == 1
    assert await bobs_view() == ("reply", 0, False, False)

    group = await alice.groups.create("team", ["@bob"])  # a group conversation
    await alice.send_text_to(group, "hello team")
    await bob.sync()
    [g_conv] = [c for c in await bob.conversations() if c.peer == group]
    assert g_conv.group_name == "team" and g_conv.unread == 1
    assert g_conv.last is not None and g_conv.last.sender == alice.user
    assert (await bob.conversations(limit=1))[0].peer == group  # the newest first
    await assert_exact(bob.cache)
