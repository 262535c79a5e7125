"""A pending identity key change (security review H1) through a real relay: what the user
types to the contact waits for a decision, but receiving from the pinned key goes on,
and its delivery and read receipts (not typed) still go to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tenchat.client.cache import READ
from tenchat.client.service import Client, KeyChanged
from tests.conftest import PASSPHRASE
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


@pytest.mark.asyncio
async def test_receipts_reach_the_pinned_key_while_a_key_change_is_pending(
        tmp_path: Path, relay: RelayProcess) -> None:
    alice = await Client.create(tmp_path / "alice", relay.url, "alice", PASSPHRASE)
    bob = await Client.create(tmp_path / "bob", relay.url, "bob", PASSPHRASE)
    try:
        await bob.send_text("alice", "hello")
        await alice.sync()  # @bob is pinned to bob's key
        # Someone else's key now claims @bob: a pending change of the pinned contact.
        async with alice.cache.transaction():
            held = await alice.cache.contacts.record_key_change("bob", os.urandom(32), 0)
        assert held is not None and held.user == bob.user

        with pytest.raises(KeyChanged):  # typed content waits for accept/reject
            await alice.send_text_to(bob.user, "who are you?")

        second = await bob.send_text("alice", "still me, old key")
        assert await alice.sync() == 1  # the batch commits, its delivered receipt queued
        got = await alice.cache.messages.get(bob.user, second.id)
        assert got is not None and got.text == "still me, old key"
        assert await alice.mark_read(bob.user) == 2  # the read receipt is not held either
        await alice.flush_outbox()

        await bob.sync()
        mine = await bob.cache.messages.get(alice.user, second.id)
        assert mine is not None and mine.status == READ
    finally:
        await alice.close()
        await bob.close()
