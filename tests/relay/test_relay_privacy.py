"""Blocks, hidden presence and message expiry, against a real relay."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenchat.common.frames import (
    Block,
    Deliver,
    Fetch,
    GroupDeliver,
    GroupSend,
    GroupStored,
    Messages,
    Ok,
    Presence,
    PresenceState,
    Privacy,
    Send,
    Stored,
    Subscribe,
    Watch,
)
from tests.relay.conftest import SMALL_FRAME
from tests.support.groups import TestGroup, drain_all
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, assert_alive, async_test, logged_in, msg_id

pytestmark = pytest.mark.slow


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def db_rows(relay: RelayProcess, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    path = Path(relay.data_dir) / "relay.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return list(db.execute(sql, params))


async def send(c: RelayClient, to: bytes, body: bytes, **fields: object) -> Stored:
    stored = await c.call(Send, to=to, msg=fields.pop("msg", None) or msg_id(), body=body,
                          **fields)
    assert isinstance(stored, Stored), stored
    return stored


# --- block ---------------------------------------------------------------------------------


@async_test
async def test_blocked_sender_gets_a_normal_stored_and_nothing_arrives(
    relay: RelayProcess,
) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        await drain_all(bob)
        before = await send(alice, bob.user, b"before")
        assert (await bob.next_push(Deliver)).seq == before.seq
        assert isinstance(await bob.call(Block, user=alice.user), Ok)

        mid = msg_id()
        hidden = await send(alice, bob.user, b"blocked", msg=mid)
        assert hidden.seq > before.seq and hidden.msg == mid  # looks like any other
        retry = await send(alice, bob.user, b"blocked", msg=mid)
        assert (retry.seq, retry.at) == (hidden.seq, hidden.at)
        typing = await alice.call(Send, to=bob.user, msg=msg_id(), body=b"t", eph=True)
        assert isinstance(typing, Ok)
        other = await send(carol, bob.user, b"from carol")  # others are not affected
        push = await bob.next_push(Deliver)
        assert (push.seq, push.body) == (other.seq, b"from carol")
        await bob.no_push()
        page = await bob.call(Fetch, user=bob.user)
        assert isinstance(page, Messages)
        assert [m.body for m in page.items] == [b"before", b"from carol"]
        assert db_rows(relay, "SELECT count(*) FROM messages WHERE sender = ? AND body = ?",
                       (alice.user, b"blocked")) == [(0,)]

        assert isinstance(await bob.call(Block, user=alice.user, blocked=False), Ok)
        after = await send(alice, bob.user, b"unblocked")
        assert after.seq > other.seq
        assert (await bob.next_push(Deliver)).body == b"unblocked"
        await assert_alive(alice, bob)


# --- hide_presence -------------------------------------------------------------------------


@async_test
async def test_hidden_presence_looks_offline(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        for friend in (bob, carol):  # contacts of alice's (presence is for contacts)
            await send(friend, alice.user, b"hi", conv=True)
        state = await alice.call(Watch, users=[bob.user, carol.user])
        assert isinstance(state, PresenceState) and state.online == []
        await bob.call(Subscribe)
        assert (await alice.next_push(Presence)).online is True

        # Hiding while online: watchers see bob go offline, and stay offline.
        assert isinstance(await bob.call(Privacy, hide_presence=True), Ok)
        push = await alice.next_push(Presence)
        assert (push.user, push.online) == (bob.user, False)
        state = await alice.call(Watch, users=[bob.user, carol.user])
        assert isinstance(state, PresenceState) and state.online == []
        assert bob.key is not None
        bob2 = await RelayClient.login(relay.url, bob.key)
        await bob2.call(Subscribe)
        await bob2.close()
        await alice.no_push()

        # The setting is stored: carol hides, leaves, comes back — never seen online.
        assert isinstance(await carol.call(Privacy, hide_presence=True), Ok)
        assert carol.key is not None
        carol_key = carol.key
        await carol.close()
        carol = await RelayClient.login(relay.url, carol_key)
        await carol.call(Subscribe)
        await alice.no_push()
        state = await alice.call(Watch, users=[bob.user, carol.user])
        assert isinstance(state, PresenceState) and state.online == []
        await carol.close()
        await alice.no_push()

        # Showing again: bob comes online for watchers.
        assert isinstance(await bob.call(Privacy, hide_presence=False), Ok)
        push = await alice.next_push(Presence)
        assert (push.user, push.online) == (bob.user, True)
        await bob.close()
        assert (await alice.next_push(Presence)).online is False


# --- expiry --------------------------------------------------------------------------------


@pytest.fixture
def sweeping_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    """A relay sweeping expired rows every second."""
    with RelayProcess(
        tmp_path / "data",
        args=["--max-frame", str(SMALL_FRAME)],
        env={"TENCHAT_RELAY_SWEEP_INTERVAL": "1"},
    ) as proc:
        yield proc


@async_test
async def test_expired_messages_are_never_delivered_and_swept(
    sweeping_relay: RelayProcess,
) -> None:
    relay = sweeping_relay
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        g = TestGroup()
        await g.change(alice, "create", name="expiry", members=[bob.user, carol.user])
        items, _ = await drain_all(carol)  # online: gets live pushes from now on
        assert [m.change for m in items] == [True]  # the create

        soon = now_ms() + 1500
        keep = await send(alice, bob.user, b"keep")
        await send(alice, bob.user, b"past", expires_at=1)  # accepted, already expired
        await send(alice, bob.user, b"soon", expires_at=soon)
        await send(alice, carol.user, b"past to carol", expires_at=now_ms() - 1)
        gpast = await alice.call(GroupSend, group=g.id, msg=msg_id(), body=b"gpast",
                                 expires_at=1)
        gsoon = await alice.call(GroupSend, group=g.id, msg=msg_id(), body=b"gsoon",
                                 expires_at=soon)
        gkeep = await alice.call(GroupSend, group=g.id, msg=msg_id(), body=b"gkeep")
        for reply in (gpast, gsoon, gkeep):
            assert isinstance(reply, GroupStored), reply

        # Live: the already-expired ones are never pushed.
        got = [await carol.next_push(GroupDeliver), await carol.next_push(GroupDeliver)]
        assert [m.body for m in got] == [b"gsoon", b"gkeep"]
        await carol.no_push()

        await asyncio.sleep(max(0.0, (soon - now_ms()) / 1000) + 0.1)
        # Drain (bob, offline until now) and fetch: only what never expires.
        items, _ = await drain_all(bob)
        assert [m.body for m in items] == [b"keep", g.records[0], b"gkeep"]
        page = await bob.call(Fetch, user=bob.user)
        assert isinstance(page, Messages) and [m.seq for m in page.items] == [keep.seq]

        # The sweep (every second here) deletes the expired rows.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = db_rows(relay, "SELECT (SELECT count(*) FROM messages WHERE expires_at > 0)"
                                  " + (SELECT count(*) FROM group_log WHERE expires_at > 0)")
            if left == [(0,)]:
                break
            await asyncio.sleep(0.2)
        assert left == [(0,)]
        assert db_rows(relay, "SELECT count(*) FROM messages") == [(1,)]  # "keep"
        assert db_rows(relay, "SELECT count(*) FROM group_log WHERE change = 0") == [(1,)]


def test_sweep_uses_the_expiry_indexes(tmp_path: Path) -> None:
    """The sweep's selects go through the partial indexes, never a table scan."""
    from tenchat.relay.storage import MIGRATIONS

    db = sqlite3.connect(tmp_path / "x.sqlite3")
    for migration in MIGRATIONS:
        for stmt in migration.split(";"):
            if stmt.strip():
                db.execute(stmt)
    for table, key in (("messages", "seq"), ("group_log", "gseq")):
        plan = " ".join(
            row[-1] for row in db.execute(
                f"EXPLAIN QUERY PLAN DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM"
                f" {table} WHERE expires_at > 0 AND expires_at <= ? LIMIT ?)", (1, 500))
        )
        assert "_expiry" in plan and f"SCAN {table}" not in plan, plan
