"""Storage contract: the audit log, bans, invites and moderation."""

from __future__ import annotations

import os

from tenchat.relay.storage import AuditEntry, HandleRecord, Store
from tests.support.wsclient import async_test

from .conftest import Clock, refused


def entry(clock: Clock, action: str, target: bytes | None = None) -> AuditEntry:
    return AuditEntry(clock.now, os.urandom(32), action, target, "why", "10.0.0.1")


@async_test
async def test_audit_rows_and_counts(store: Store, clock: Clock) -> None:
    first = entry(clock, "auth_failed")
    row = await store.audit_insert(first)
    assert row > 0
    await store.audit_add(row, 4)
    second = await store.audit_insert(entry(clock, "ban"))
    log = await store.audit_log(10)
    assert [(e.id, e.action, e.count) for e in log] == [(row, "auth_failed", 5),
                                                         (second, "ban", 1)]
    assert (log[0].actor, log[0].detail, log[0].ip, log[0].at) == (
        first.actor, "why", "10.0.0.1", clock.now)
    assert [e.id for e in await store.audit_log(1)] == [second]  # the newest


@async_test
async def test_ban_and_unban(store: Store, clock: Clock) -> None:
    bob = os.urandom(32)
    assert await store.last_ban() == 0
    assert not await store.is_banned(bob)
    await store.moderate("ban", bob, "spam", entry(clock, "ban", bob))
    assert await store.is_banned(bob)
    last = await store.last_ban()
    assert await store.bans_after(0) == [(last, bob)]
    assert await store.bans_after(last) == []
    await store.moderate("unban", bob, "", entry(clock, "unban", bob))
    assert not await store.is_banned(bob)
    await refused(store.moderate("unban", bob, "", entry(clock, "unban", bob)), "not_found")
    await refused(store.moderate("ban", b"short", "", entry(clock, "ban")), "malformed")
    await store.moderate("ban", bob, "again", entry(clock, "ban", bob))
    assert await store.last_ban() > last  # a new ban is found by id
    assert [e.action for e in await store.audit_log(10)] == ["ban", "unban", "ban"]


@async_test
async def test_removals_take_what_hangs_on_a_post(store: Store, clock: Clock) -> None:
    alice = os.urandom(32)
    post, comment = os.urandom(16), os.urandom(16)
    await store.put_post(alice, post, b"p", True)
    await store.put_comment(post, alice, comment, b"c")
    await store.put_comment(post, alice, os.urandom(16), b"c2")
    await store.put_reaction(post, alice, alice, "👍", 1, False, b"r")
    await store.moderate("remove_comment", comment, "", entry(clock, "remove_comment"))
    assert await store.comment_page(post, None, 10) == [b"c2"]
    await refused(store.moderate("remove_comment", comment, "", entry(clock, "x")), "not_found")
    await store.moderate("remove_post", post, "", entry(clock, "remove_post"))
    assert await store.feed_page(alice, [alice], None, 10) == []
    assert await store.post_extras([post]) == [(0, {})]
    await refused(store.moderate("remove_post", post, "", entry(clock, "x")), "not_found")
    assert len(await store.audit_log(10)) == 2  # refused ones write no row


@async_test
async def test_invites(store: Store, clock: Clock) -> None:
    alice, bob, carol = os.urandom(32), os.urandom(32), os.urandom(32)
    await store.add_invites(["one", "two"], 0)
    await store.add_invites(["old"], clock.now + 10)
    await refused(store.register_invited(alice, "alice", b"s", ""), "invite_required")
    await refused(store.register_invited(alice, "alice", b"s", "nope"), "bad_invite")
    rec = await store.register_invited(alice, "alice", b"s", "one")
    assert rec == HandleRecord("alice", alice, b"s")
    assert await store.handle_by_name("alice") == rec
    assert await store.register_invited(alice, "alice", b"s", "") == rec  # again: no code
    await refused(store.register_invited(bob, "bob", b"s", "one"), "bad_invite")  # used
    await refused(store.register_invited(bob, "alice", b"s", "two"), "handle_taken")
    clock.now += 10
    await refused(store.register_invited(carol, "carol", b"s", "old"), "bad_invite")
    assert await store.handle_by_name("carol") is None
    await store.register_invited(bob, "bob", b"s", "two")  # not used up by the refusals
