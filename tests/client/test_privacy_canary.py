"""Canary scans (issue 17): after 1:1, group, post, story and wallet traffic between real
clients through a relay in this process, the relay's files (its SQLite database with its
WAL, and its blob directory) hold no sender of a sealed 1:1 message, no group name or
topic, and none of the end-to-end texts."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tenchat.client.service import Client
from tenchat.common.crypto.sealed import SEALED_SENDER
from tests.conftest import PASSPHRASE
from tests.support.inproc import InProcRelay

pytestmark = pytest.mark.asyncio

# Texts that must never reach the relay in the clear (public posts are public: not here).
CANARIES = {
    "first": "canary-first-aardvark",
    "sealed": "canary-sealed-bonobo",
    "group_name": "Canary Cassowary Club",
    "group_topic": "canary-topic-dugong",
    "group_post": "canary-group-echidna",
    "followers_post": "canary-followers-fossa",
    "story": "canary-story-gecko",
}


class World:
    def __init__(self, relay: InProcRelay, alice: Client, bob: Client) -> None:
        self.relay, self.alice, self.bob = relay, alice, bob

    def files(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.relay.config.data.rglob("*"))
                        if p.is_file())

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
        path = self.relay.config.data / "relay.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return list(db.execute(sql, params))


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    relay = await InProcRelay(tmp_path / "relay").start()
    alice = await Client.create(tmp_path / "alice", relay.url, "alice", PASSPHRASE)
    bob = await Client.create(tmp_path / "bob", relay.url, "bob", PASSPHRASE)
    try:
        yield World(relay, alice, bob)
    finally:
        await alice.close()
        await bob.close()
        await relay.stop()


async def test_the_relays_files_hold_no_sealed_sender_group_name_or_text(world: World
                                                                          ) -> None:
    alice, bob = world.alice, world.bob
    # 1:1: the first message goes named (bob has no key of alice's yet), the reply sealed
    # (bob hides his presence, so none of his goes named to grant it)
    await bob.set_setting("hide_presence", True)
    await alice.send_text("@bob", CANARIES["first"])
    await bob.sync()
    await bob.send_text("@alice", CANARIES["sealed"])
    queued = world.rows("SELECT sender FROM messages WHERE recipient = ?", (alice.user,))
    assert queued and {bytes(s) for (s,) in queued} == {SEALED_SENDER}
    await alice.sync()
    # group: name, topic, a post
    group = await alice.groups.create(CANARIES["group_name"], ["@bob"])
    await alice.groups.update(group, topic=CANARIES["group_topic"])
    await alice.queue_text(group, CANARIES["group_post"])
    await alice.flush_outbox()
    await bob.sync()
    assert (await bob.groups.info(group)).name == CANARIES["group_name"]
    # posts and stories for followers
    await bob.social.follow("@alice")
    await alice.social.post("a public hello", audience="public")
    await alice.social.post(CANARIES["followers_post"], audience="followers")
    await alice.stories.post_story(CANARIES["story"])
    await bob.sync()
    # wallet: a binding (public by design), made and read
    address = await alice.wallet.create()
    await alice.wallet.link(address)
    await bob.sync()

    files = world.files()
    assert b"a public hello" in files  # the scan sees what the relay does keep in the clear
    for name, text in CANARIES.items():
        assert text.encode() not in files, name
    # the sealed messages named no one: no dedupe row, queue row or contact says bob
    # wrote to alice (bob's key is in the files for other reasons: his handle, prekeys)
    assert world.rows("SELECT count(*) FROM contacts WHERE user = ? AND peer = ?",
                      (bob.user, alice.user)) == [(0,)]
    assert bob.user not in b"".join(bytes(r[0]) + bytes(r[1])
                                    for r in world.rows(
                                        "SELECT sender, msg_id FROM sent UNION ALL"
                                        " SELECT sender, msg_id FROM sent_log"))


async def test_the_clients_home_holds_no_message_text_or_contact_handle(tmp_path: Path
                                                                          ) -> None:
    """The cache (messages, search index, contacts, sessions) is encrypted at rest, its
    WAL too: nothing in the home's files reads as a message or a contact's handle."""
    relay = await InProcRelay(tmp_path / "relay").start()
    alice = await Client.create(tmp_path / "alice", relay.url, "alicecanary", PASSPHRASE)
    bob = await Client.create(tmp_path / "bob", relay.url, "bobcanary", PASSPHRASE)
    try:
        await alice.send_text("@bobcanary", CANARIES["first"])
        await bob.sync()
        await bob.send_text("@alicecanary", CANARIES["sealed"])
        await alice.sync()
        group = await alice.groups.create(CANARIES["group_name"], ["@bobcanary"])
        await alice.queue_text(group, CANARIES["group_post"])
        await alice.flush_outbox()
        await bob.sync()
        assert [h.message.text for h in await bob.search("echidna")] == [
            CANARIES["group_post"]]  # the index works, and holds the word
        for client in (alice, bob):
            home = client.home
            files = b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())
            assert len(files) > 10_000  # the cache and its WAL are there
            for name, text in CANARIES.items():
                assert text.encode() not in files, (home.name, name)
            for handle in (b"alicecanary", b"bobcanary"):
                assert handle not in files, (home.name, handle)
    finally:
        await alice.close()
        await bob.close()
        await relay.stop()
