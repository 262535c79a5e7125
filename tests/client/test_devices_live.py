"""Accounts with several devices (issue 16), real clients on a real relay process:
alice on 2 devices and bob on 3 — every message, receipt and reaction reaches all five
caches once, a read on one device clears the unread count on the others, a removed device
gets nothing sent after its removal, and an old single-device home upgraded in place
keeps its sessions and its safety number."""

from __future__ import annotations

import asyncio

import pytest

from tenchat.client.cache import DELIVERED, READ, SENT
from tenchat.client.connection import RelayError
from tenchat.client.events import PresenceChanged
from tenchat.client.groups import MEMBER_DEVICES_MAX_AGE_MS
from tenchat.client.linking import grant, read_request, start_link
from tenchat.client.service import Client
from tenchat.common import frames as f
from tenchat.common.crypto.safety import safety_number
from tenchat.common.crypto.sender_keys import SenderKey
from tests.support.cache_file import UNDO_TO_13, open_cache_file
from tests.support.clients import PASSPHRASE, People
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


async def link(people: People, owner: Client, name: str) -> Client:
    """A new device ``name`` of ``owner``'s account, linked the way the CLI does it."""
    pending = await start_link(people.home(f"{owner.handle}-{name}"), people.relay_url, name)
    finishing = asyncio.ensure_future(pending.finish(PASSPHRASE, timeout=30))
    code, request = await read_request(owner, pending.text)
    assert request.device == pending.device.public and request.name == name
    await grant(owner, code, request, timeout=30)
    new = await finishing
    assert isinstance(new, Client)
    people.made.append(new)
    assert new.user == owner.user and new.device_id != owner.device_id
    return new


async def sync_all(*clients: Client) -> None:
    for client in clients:
        await client.sync()


async def texts(client: Client, peer: bytes) -> list[tuple[str, bool]]:
    return [(m.text, m.outgoing) for m in await client.cache.messages.history(peer, 100)]


async def unread(client: Client, peer: bytes) -> int:
    return next((c.unread for c in await client.conversations() if c.peer == peer), 0)


@pytest.mark.asyncio
async def test_two_and_three_devices(people: People) -> None:
    alice1, bob1 = await people("alice", "bob")
    alice2 = await link(people, alice1, "a2")
    bob2 = await link(people, bob1, "b2")
    bob3 = await link(people, bob1, "b3")
    alices, bobs = (alice1, alice2), (bob1, bob2, bob3)
    assert [d.name for d in await bob3.my_devices()] == ["first", "b2", "b3"]

    sent = await alice1.send_text("bob", "hi bob, on all your devices")
    await sync_all(*bobs, alice2)
    for bob in bobs:  # each of bob's devices: the message, once
        assert await texts(bob, alice1.user) == [("hi bob, on all your devices", False)]
        assert await unread(bob, alice1.user) == 1
    # alice's other device: the message as sent by her
    assert await texts(alice2, bob1.user) == [("hi bob, on all your devices", True)]

    await sync_all(*alices)  # the delivered receipts of bob's devices
    for alice in alices:
        row = await alice.cache.messages.get(bob1.user, sent.id)
        assert row is not None and row.status == DELIVERED

    # a reaction from bob's second device: on every cache, once
    await bob2.react(alice1.user, sent.id, "👍")
    await sync_all(*alices, bob1, bob3)
    for client in (*alices, *bobs):
        peer = bob1.user if client in alices else alice1.user
        assert await client.cache.messages.reactions(peer, [sent.id]) == {sent.id: {"👍": 1}}

    # a reply from bob3 reaches both of alice's devices and bob's others as sent
    await bob3.send_text("alice", "got it")
    await sync_all(*alices, bob1, bob2)
    for alice in alices:
        assert await texts(alice, bob1.user) == [("hi bob, on all your devices", True),
                                                 ("got it", False)]
    for bob in (bob1, bob2):
        assert (await texts(bob, alice1.user))[-1] == ("got it", True)

    # read on bob1: the unread count clears on bob2 and bob3, alice sees it read
    assert await bob1.mark_read(alice1.user) == 1
    await sync_all(bob2, bob3, *alices)
    for bob in bobs:
        assert await unread(bob, alice1.user) == 0
    for alice in alices:
        row = await alice.cache.messages.get(bob1.user, sent.id)
        assert row is not None and row.status == READ


@pytest.mark.asyncio
async def test_a_removed_device_gets_nothing_new(people: People) -> None:
    alice, bob1 = await people("alice", "bob")
    bob2 = await link(people, bob1, "b2")
    await alice.send_text("bob", "before")
    await sync_all(bob1, bob2)
    assert await texts(bob2, alice.user) == [("before", False)]

    removed = await bob1.remove_device("b2")
    assert removed.key == bob2.device_id
    assert [d.name for d in await bob1.my_devices()] == ["first"]
    after = await alice.send_text("bob", "after the removal")
    await bob1.send_text("alice", "bob1 after the removal")
    await sync_all(bob1, bob2, alice)
    assert await texts(bob1, alice.user) == [("before", False), ("bob1 after the removal", True),
                                             ("after the removal", False)]
    # bob2 got nothing: not alice's message, not bob1's sync copy
    assert await texts(bob2, alice.user) == [("before", False)]
    row = await alice.cache.messages.get(bob1.user, after.id)
    assert row is not None and row.status == DELIVERED
    # alice's client says what changed, like a key change
    alerts = [a.text for a in await alice.device_alerts(bob1.user)]
    assert any("removed 'b2'" in text for text in alerts), alerts


async def own_chain(client: Client, group: bytes) -> int:
    row = await client.cache.groups.state(group)
    assert row is not None and row[1] is not None
    return SenderKey.from_bytes(row[1]).chain_id


@pytest.mark.asyncio
async def test_group_keys_rotate_when_a_members_devices_change(people: People) -> None:
    alice, bob1 = await people("alice", "bob")
    group = await alice.groups.create("team", ["bob"])
    await alice.send_text_to(group, "g1")
    first = await own_chain(alice, group)
    bob2 = await link(people, bob1, "b2")
    await alice.send_text_to(group, "g2")  # looked at bob's devices just now: same chain
    assert await own_chain(alice, group) == first
    clock = alice.clock
    alice.clock = lambda: clock() + MEMBER_DEVICES_MAX_AGE_MS  # a minute later
    await alice.send_text_to(group, "g3")  # alice sees bob's new device: a new chain
    second = await own_chain(alice, group)
    assert second != first
    await bob1.remove_device("b2")
    await alice.send_text("bob", "1:1 sends look at the list every time")
    await alice.send_text_to(group, "g4")
    third = await own_chain(alice, group)
    assert third not in (first, second)
    await alice.send_text_to(group, "g5")  # no change: the chain stays
    assert await own_chain(alice, group) == third
    await bob1.sync()
    assert [m.text for m in await bob1.cache.messages.history(group, 10)] == [
        "g1", "g2", "g3", "g4", "g5"]
    await bob2.sync()  # a linked device can't read groups yet (docs/crypto.md "Devices")


@pytest.mark.asyncio
async def test_an_old_home_upgraded_in_place_keeps_its_sessions(people: People) -> None:
    alice, bob = await people("alice", "bob")
    await alice.send_text("bob", "one")
    await bob.sync()
    await bob.send_text("alice", "two")
    await alice.sync()
    number = safety_number(alice.user, bob.user)
    bob_sessions = len(await bob.cache.sessions.of(alice.user))
    home = people.home("alice")
    await alice.close()
    # Make alice's cache what a tenchat from before devices left behind: no device tables.
    db = open_cache_file(home / "cache.sqlite", alice.secrets.storage_key)
    # (and none of the later migrations: the conversation summary's, 14)
    db.executescript(UNDO_TO_13 + "DROP TABLE device_lists; DROP TABLE device_index;"
                     " DROP TABLE outbox_copies; DROP TABLE device_alerts;")
    db.execute("PRAGMA user_version=12")
    db.commit()
    db.close()

    alice = await Client.unlock(home, None, PASSPHRASE)
    people.made.append(alice)
    assert alice.device_id == alice.user  # the account key is its first device's key
    await alice.send_text("bob", "three")
    await bob.sync()
    assert [t for t, _ in await texts(bob, alice.user)] == ["one", "two", "three"]
    assert len(await bob.cache.sessions.of(alice.user)) == bob_sessions  # no new session

    assert await alice.mark_read(bob.user) == 1  # "two"
    alice2 = await link(people, alice, "laptop")
    assert safety_number(alice2.user, bob.user) == number
    await bob.send_text("alice", "four")
    await sync_all(alice, alice2)
    assert (await texts(alice, bob.user))[-1] == ("four", False)
    # the new device got the conversation so far (history), then the new message
    assert await texts(alice2, bob.user) == [("one", True), ("two", False), ("three", True),
                                             ("four", False)]
    assert await unread(alice2, bob.user) == 1  # "two" was read on the first device
    last = (await bob.cache.messages.history(alice.user, 1))[0]
    row = await bob.cache.messages.get(alice.user, last.id)
    assert row is not None and row.status >= SENT


@pytest.mark.asyncio
@pytest.mark.relay(args=["--registration", "invite-only"])
async def test_a_device_links_on_an_invite_only_relay(people: People, relay: RelayProcess
                                                      ) -> None:
    """The new device holds no handle (its account does): it may link and publish its
    keys, then acts for the account; an identity that is no one's device still may not."""
    from tests.relay.test_relay_admin import admin_json

    codes = admin_json(relay, "invite", "--count", "2")["codes"]
    alice = await Client.create(people.home("alice"), relay.url, "alice", PASSPHRASE,
                                invite=codes[0])
    bob = await Client.create(people.home("bob"), relay.url, "bob", PASSPHRASE,
                              invite=codes[1])
    people.made += [alice, bob]
    laptop = await link(people, alice, "laptop")
    await laptop.send_text("bob", "from alice's laptop")
    await bob.sync()
    assert await texts(bob, alice.user) == [("from alice's laptop", False)]
    stranger = await start_link(people.home("stranger"), relay.url, "x")  # linking: allowed
    try:
        with pytest.raises(RelayError) as refused:
            await stranger.conn.request(f.Whois, user=alice.user)
        assert refused.value.code == "invite_required"
    finally:
        await stranger.conn.close()


@pytest.mark.asyncio
async def test_a_group_with_members_on_several_devices(people: People) -> None:
    alice1, bob1, carol = await people("alice", "bob", "carol")
    alice2 = await link(people, alice1, "a2")
    bob2 = await link(people, bob1, "b2")
    group = await alice1.groups.create("team", ["bob", "carol"])
    everyone = (alice1, alice2, bob1, bob2, carol)
    await sync_all(*everyone)  # every device learns the group from its signed chain
    for client in everyone:
        assert await client.groups.state(group) is not None, client.handle
    await alice2.send_text_to(group, "from alice's second device")
    await sync_all(*everyone)
    await bob2.send_text_to(group, "from bob's second device")
    await sync_all(*everyone)
    await alice1.send_text_to(group, "from alice's first device")
    await sync_all(*everyone)
    for client in everyone:
        rows = await client.cache.messages.history(group, 10)
        mine = client.user
        assert [(r.text, r.outgoing) for r in rows] == [
            ("from alice's second device", mine == alice1.user),
            ("from bob's second device", mine == bob1.user),
            ("from alice's first device", mine == alice1.user)], client.handle


@pytest.mark.asyncio
async def test_settings_and_blocks_reach_every_device(people: People) -> None:
    alice, bob1, carol1 = await people("alice", "bob", "carol")
    bob2 = await link(people, bob1, "b2")
    carol2 = await link(people, carol1, "c2")
    await carol1.send_text("bob", "hi from carol")
    await alice.send_text("bob", "hi from alice")
    await sync_all(bob1, bob2)

    await bob1.set_blocked("carol", True)
    await bob1.set_muted(alice.user, True)
    await bob1.set_setting("read_receipts", False)
    await bob2.sync()
    blocked = await bob2.cache.contacts.get(carol1.user)
    assert blocked is not None and blocked.blocked
    assert [c.muted for c in await bob2.conversations() if c.peer == alice.user] == [True]
    assert await bob2.setting("read_receipts") is False

    # The relay now drops what any device of carol's sends to any device of bob's.
    await carol2.send_text("bob", "from carol's other device")
    await carol1.send_text("bob", "and her first")
    await alice.send_text("bob", "a barrier: stored after carol's")
    for bob in (bob1, bob2):
        conn = await bob.connection()
        queued = await conn.request(f.Fetch, user=bob.device_id)
        assert isinstance(queued, f.Messages)
        senders = {item.sender for item in queued.items}
        assert alice.user in senders and not senders & {carol1.device_id, carol2.device_id}


@pytest.mark.asyncio
async def test_a_linked_device_publishes_for_its_account(people: People) -> None:
    """Profiles and posts are signed by the account key, which every device holds; the
    relay takes them from any device its list names."""
    alice1, bob = await people("alice", "bob")
    alice2 = await link(people, alice1, "laptop")
    await alice2.social.set_profile(name="Alice on her laptop")
    post = await alice2.social.post("posted from the laptop", audience="public")
    assert post.author == alice1.user
    seen = await bob.social.profile("alice")
    assert seen.profile is not None and seen.profile.display_name == "Alice on her laptop"
    feed = await bob.social.feed(authors=[alice1.user])
    assert [(p.author, p.text) for p in feed] == [(alice1.user, "posted from the laptop")]


@pytest.mark.asyncio
async def test_an_account_is_online_while_any_of_its_devices_is(people: People) -> None:
    alice, bob1 = await people("alice", "bob")
    bob2 = await link(people, bob1, "b2")
    await bob2.send_text("alice", "hi from bob's laptop")  # bob wrote: alice may see him
    changes: asyncio.Queue[bool] = asyncio.Queue()
    alice.subscribe(lambda e: changes.put_nowait(e.online) if isinstance(
        e, PresenceChanged) and e.peer == bob1.user else None)
    runs = [asyncio.ensure_future(alice.run())]
    try:
        async with asyncio.timeout(20):
            assert await changes.get() is False  # bob's first device stays offline
            runs.append(asyncio.ensure_future(bob2.run()))  # his laptop comes online
            assert await changes.get() is True
            await bob2.close()
            assert await changes.get() is False
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)


@pytest.mark.asyncio
async def test_our_followers_only_key_reaches_our_other_devices(people: People) -> None:
    alice1, bob = await people("alice", "bob")
    alice2 = await link(people, alice1, "laptop")
    await bob.social.follow("alice")
    post = await alice1.social.post("for my followers", audience="followers")
    await alice2.sync()  # the key went to bob, and (as a sync copy) to alice's laptop
    feed = await alice2.social.feed(authors=[alice1.user])
    assert [(p.id, p.text) for p in feed] == [(post.id, "for my followers")]
    await bob.sync()
    assert [p.text for p in await bob.social.feed(authors=[alice1.user])] == [
        "for my followers"]
