"""Sealed sender across devices (issues 16 + 17), real clients on a real relay process:
alice on 2 devices and bob on 2 — once each device has written its first (named)
message, every further 1:1 copy, to a peer's devices and to our own other device, is
queued on the relay with no sender and arrives once; the account's one profile key
reaches a linked device, and its rotation on a block reaches the other device."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from tenchat.client.service import Client
from tenchat.common.crypto.sealed import SEALED_SENDER, access_key, access_verifier
from tests.client.test_devices_live import link, sync_all
from tests.support.clients import People
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def rows(relay: RelayProcess) -> dict[tuple[bytes, int], bytes]:
    """(recipient, seq) -> sender of every queued message, read off the relay's file."""
    with sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True) as db:
        return {(bytes(r), s): bytes(x) for r, s, x in
                db.execute("SELECT recipient, seq, sender FROM messages")}


def verifier_of(relay: RelayProcess, device: bytes) -> bytes | None:
    with sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT verifier FROM sealed_access WHERE user = ?",
                         (device,)).fetchone()
    return bytes(row[0]) if row is not None else None


async def registered(relay: RelayProcess, client: Client) -> bytes:
    """Wait until the relay holds the verifier of ``client``'s current profile key for
    ``client``'s own device queue (each device registers it itself)."""
    key = await client.sealed_sender._profile_key()
    assert key is not None
    want = access_verifier(access_key(key))
    async with asyncio.timeout(20):
        while verifier_of(relay, client.device_id) != want:
            await asyncio.sleep(0.05)
    return key


async def texts(client: Client, peer: bytes) -> list[str]:
    return [m.text for m in await client.cache.messages.history(peer, 100)]


async def new_senders(relay: RelayProcess, before: dict[tuple[bytes, int], bytes],
                      ) -> dict[bytes, list[bytes]]:
    """The queues that got copies since ``before``: recipient -> their senders."""
    got: dict[bytes, list[bytes]] = {}
    for (recipient, seq), sender in sorted(rows(relay).items()):
        if (recipient, seq) not in before:
            got.setdefault(recipient, []).append(sender)
    return got


@pytest.mark.asyncio
async def test_every_device_copy_is_sealed(people: People, relay: RelayProcess) -> None:
    alice1, bob1 = await people("alice", "bob")
    alice2 = await link(people, alice1, "a2")
    bob2 = await link(people, bob1, "b2")
    everyone = (alice1, alice2, bob1, bob2)

    # the first exchange: each device writes once (named: it grants presence) and the
    # account's profile key goes to the peer and, as `state`, to our other device
    for client, to in ((alice1, "bob"), (bob1, "alice"), (alice2, "bob"), (bob2, "alice")):
        await client.send_text(to, f"first from {client.device_id.hex()[:8]}")
        await sync_all(*everyone)
    for one, other in ((alice1, alice2), (bob1, bob2)):  # one key per account
        assert await registered(relay, one) == await registered(relay, other)

    before = rows(relay)
    await alice1.send_text("bob", "sealed to both of bob's")
    queued = await new_senders(relay, before)
    assert set(queued) == {bob1.device_id, bob2.device_id, alice2.device_id}
    assert {s for senders in queued.values() for s in senders} == {SEALED_SENDER}

    before = rows(relay)
    await bob2.send_text("alice", "sealed from a linked device")
    queued = await new_senders(relay, before)
    assert set(queued) == {alice1.device_id, alice2.device_id, bob1.device_id}
    assert {s for senders in queued.values() for s in senders} == {SEALED_SENDER}

    await sync_all(*everyone)
    for alice in (alice1, alice2):  # each arrived once, from the right author
        got = await texts(alice, bob1.user)
        assert got.count("sealed to both of bob's") == 1
        assert got.count("sealed from a linked device") == 1
        assert [m.outgoing for m in await alice.cache.messages.history(bob1.user, 100)
                if m.text == "sealed from a linked device"] == [False]
    for bob in (bob1, bob2):
        got = await texts(bob, alice1.user)
        assert got.count("sealed to both of bob's") == 1
        assert got.count("sealed from a linked device") == 1


@pytest.mark.asyncio
async def test_a_rotation_on_block_reaches_the_other_device(
        people: People, relay: RelayProcess) -> None:
    alice1, bob = await people("alice", "bob")
    await alice1.send_text("bob", "hi")  # alice's profile key, made before the link
    await bob.sync()
    assert await bob.sealed_sender.access_for(alice1.user)
    await bob.send_text("alice", "hi alice")  # bob's, to alice1 only
    await alice1.sync()
    bobs_access = await alice1.sealed_sender.access_for(bob.user)
    assert bobs_access
    alice2 = await link(people, alice1, "a2")  # the hand-over carries both
    assert await alice2.sealed_sender.access_for(bob.user) == bobs_access
    await alice2.sync()  # connects: registers the verifier for its own queue
    old = await registered(relay, alice1)
    assert await registered(relay, alice2) == old

    await alice1.set_blocked("bob", True)
    new = await registered(relay, alice1)
    assert new != old
    await alice2.sync()  # the block, then the new key, from alice1
    assert await registered(relay, alice2) == new
    contact = await alice2.cache.contacts.get(bob.user)
    assert contact is not None and contact.blocked

    # bob's old key opens neither of alice's queues now; the named fallback is dropped
    before = rows(relay)
    await bob.sync()
    await bob.send_text("alice", "let me in")
    assert not await bob.sealed_sender.access_for(alice1.user)  # refused, forgotten
    assert not {alice1.device_id, alice2.device_id} & set(await new_senders(relay, before))
