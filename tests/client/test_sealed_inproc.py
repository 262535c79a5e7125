"""Sealed sender end to end (client/sealed_sender.py, docs/protocol.md §5.10): real
clients and an in-process relay. Once a contact has our profile key, what they send us
is queued with no sender; a stranger without the access key can't deliver a sealed
message; a blocked sender stays blocked, sealed or not."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tenchat.client.service import Client
from tenchat.common import content as c
from tenchat.common.crypto.errors import CryptoError
from tenchat.common.crypto.group_meta import open_meta
from tenchat.common.crypto.sealed import SEALED_SENDER
from tests.conftest import PASSPHRASE
from tests.support.inproc import InProcRelay

pytestmark = pytest.mark.asyncio


class Trio:
    def __init__(self, relay: InProcRelay, alice: Client, bob: Client, carol: Client) -> None:
        self.relay, self.alice, self.bob, self.carol = relay, alice, bob, carol

    def queued_senders(self, recipient: bytes) -> list[bytes]:
        """The sender column of the recipient's queue, read off the relay's file."""
        path = self.relay.config.data / "relay.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return [bytes(r[0]) for r in db.execute(
                "SELECT sender FROM messages WHERE recipient = ? ORDER BY seq", (recipient,))]


@pytest_asyncio.fixture
async def trio(tmp_path: Path) -> AsyncIterator[Trio]:
    relay = await InProcRelay(tmp_path / "relay").start()
    clients = [await Client.create(tmp_path / name, relay.url, name, PASSPHRASE)
               for name in ("alice", "bob", "carol")]
    try:
        yield Trio(relay, *clients)
    finally:
        for client in clients:
            await client.close()
        await relay.stop()


async def texts(client: Client, peer: bytes) -> list[str]:
    return [m.text for m in await client.page(peer) if not m.outgoing]


async def test_a_contacts_reply_is_queued_without_its_sender(trio: Trio) -> None:
    alice, bob = trio.alice, trio.bob
    await alice.send_text("@bob", "hi bob")  # bob has no key of alice's: not sealed
    assert trio.queued_senders(bob.user) == [alice.user, alice.user]  # the text, her key
    await bob.sync()
    assert await bob.sealed_sender.access_for(alice.user)
    await bob.send_text("@alice", "first reply")
    await bob.send_text("@alice", "sealed hello")
    # bob's delivery receipt, his profile key and his second text name no one; his first
    # text went named: it tells the relay alice may see his presence (docs §5.6)
    queued = trio.queued_senders(alice.user)
    assert sorted(queued) == sorted([SEALED_SENDER] * 3 + [bob.user])
    await alice.sync()
    [shown] = [m for m in await alice.take_unshown() if m.text == "sealed hello"]
    assert shown.peer == bob.user and not shown.outgoing  # the sender, from inside
    assert trio.queued_senders(alice.user) == []  # acked
    await bob.set_setting("hide_presence", True)  # then nothing goes named
    await bob.send_text("@carol", "hi carol")
    await trio.carol.sync()
    await trio.carol.send_text("@bob", "hi bob")
    await bob.sync()
    await bob.send_text("@carol", "sealed from the start")
    assert trio.queued_senders(trio.carol.user)[-1:] == [SEALED_SENDER]
    await alice.send_text("@bob", "and back")  # alice now has bob's key too
    assert set(trio.queued_senders(bob.user)) == {SEALED_SENDER}
    await bob.sync()
    assert "and back" in await texts(bob, alice.user)


async def test_a_stranger_without_the_access_key_cannot_send_sealed(trio: Trio) -> None:
    alice, carol = trio.alice, trio.carol
    await alice.resolve("@carol")
    await carol.resolve("@alice")
    # carol guesses an access key for alice (a profile key alice never sent her)
    async with carol.cache.transaction():
        await carol.sealed_sender.receive(alice.user, alice.user,
                                          c.ProfileKey(key=os.urandom(32)), None)
    await carol.send_text("@alice", "from a stranger")
    # refused sealed (access_denied): the key is forgotten, the message went as before,
    # with carol's name on it; alice allows sealed messages from contacts only
    assert not await carol.sealed_sender.access_for(alice.user)
    assert trio.queued_senders(alice.user) == [carol.user, carol.user]
    await alice.sync()
    assert await texts(alice, carol.user) == ["from a stranger"]


async def test_a_blocked_sender_stays_blocked(trio: Trio) -> None:
    alice, bob = trio.alice, trio.bob
    await alice.send_text("@bob", "hi bob")
    await bob.sync()
    await bob.send_text("@alice", "hi alice")  # named: it grants presence
    await alice.sync()
    await bob.send_text("@alice", "hi again")  # sealed: the first one went named
    await alice.sync()
    await alice.set_blocked("@bob", True)  # alice's profile key rotates
    await bob.send_text("@alice", "let me in")
    # bob's old access key was refused and dropped; sent as before, the relay drops it
    assert not await bob.sealed_sender.access_for(alice.user)
    assert trio.queued_senders(alice.user) == []
    # With alice taking sealed messages from anyone, the relay queues bob's sealed
    # message (it can't know it is his): alice's client drops it once it has opened it.
    await alice.set_setting("sealed_from_anyone", True)
    async with bob.cache.transaction():
        await bob.sealed_sender.receive(alice.user, alice.user,
                                        c.ProfileKey(key=os.urandom(32)), None)
    await bob.send_text("@alice", "psst")
    assert trio.queued_senders(alice.user) == [SEALED_SENDER]
    await alice.sync()
    assert trio.queued_senders(alice.user) == []  # acked, and dropped
    assert await texts(alice, bob.user) == ["hi alice", "hi again"]


def relay_files(relay: InProcRelay) -> bytes:
    """Every byte of the relay's data directory (database, WAL, blobs)."""
    return b"".join(p.read_bytes() for p in sorted(relay.config.data.rglob("*"))
                    if p.is_file())


async def test_a_groups_name_and_topic_are_sealed_from_the_relay(trio: Trio) -> None:
    alice, bob, carol = trio.alice, trio.bob, trio.carol
    group = await alice.groups.create("Quokka Garden", ["@bob"])
    await alice.groups.update(group, topic="wombat topic")
    await bob.sync()
    info = await bob.groups.info(group)
    assert (info.name, info.topic) == ("Quokka Garden", "wombat topic")
    await alice.groups.update(group, name="Numbat Club")
    await alice.groups.add(group, ["@carol"])  # a late member gets the key from the adder
    await carol.sync()
    await bob.sync()
    assert (await carol.groups.info(group)).name == "Numbat Club"
    assert (await bob.groups.info(group)).name == "Numbat Club"
    assert await carol.groups.find("numbat club") == group
    files = relay_files(trio.relay)
    for secret in (b"Quokka", b"wombat", b"Numbat"):
        assert secret not in files


async def test_a_group_key_from_a_plain_member_is_ignored(trio: Trio) -> None:
    alice, bob, carol = trio.alice, trio.bob, trio.carol
    group = await alice.groups.create("Real Name", ["@bob", "@carol"])
    await bob.sync()
    # bob (a plain member) sends carol another key before carol has alice's
    async with bob.cache.transaction():
        await bob.queue_content(carol.user, os.urandom(16), c.encode_content(
            c.GroupKey(group=group, key=os.urandom(32))), typed=False)
    await bob.flush_outbox()
    await carol.sync()
    assert (await carol.groups.info(group)).name == "Real Name"  # alice's key won


async def test_a_removal_rotates_the_groups_metadata_key(trio: Trio) -> None:
    alice, bob, carol = trio.alice, trio.bob, trio.carol
    group = await alice.groups.create("Before", ["@bob", "@carol"])
    await carol.sync()
    old = await carol.groups._meta_key(group)
    await alice.groups.remove(group, ["@carol"])
    await alice.groups.update(group, name="After")
    await bob.sync()
    assert (await bob.groups.info(group)).name == "After"
    new = await bob.groups._meta_key(group)
    assert old is not None and new is not None and new != old
    state = await alice.groups.state(group)
    assert state is not None
    with pytest.raises(CryptoError):  # carol's copy opens nothing any more
        open_meta(old, group, state.sealed)


async def test_a_key_another_process_stored_is_used_not_dropped(trio: Trio) -> None:
    """Two processes on bob's home (the daemon and a command): the one that received
    alice's new profile key is not undone by the one still holding the old key."""
    alice, bob = trio.alice, trio.bob
    await alice.send_text("@bob", "hi bob")
    await bob.sync()
    await bob.send_text("@alice", "hi alice")  # named: it grants presence
    old = await bob.sealed_sender.access_for(alice.user)
    await alice.sync()
    await alice.set_blocked("@carol", True)  # a block rotates alice's key; bob gets it
    other = await Client.from_secrets(bob.home, None, bob.secrets)
    try:
        await other.sync()
        new = await other.sealed_sender.access_for(alice.user)
        assert new is not None and new != old
        await bob.send_text("@alice", "from the other process")  # still holds the old key
        assert trio.queued_senders(alice.user)[-1:] == [SEALED_SENDER]  # sealed, with new
        assert await bob.sealed_sender.access_for(alice.user) == new
    finally:
        await other.close()
    await alice.sync()
    assert "from the other process" in await texts(alice, bob.user)
