"""Contacts-only presence is granted by what the user writes, not by automatic messages
(security review M3): a group's sender-key distributions and delivery receipts used to
make every member a contact who could watch the user come and go."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support.clients import People
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def contacts(relay: RelayProcess) -> set[tuple[bytes, bytes]]:
    """The relay's contacts: (user, peer) = peer may see user's presence."""
    db = sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        return {(bytes(u), bytes(p)) for u, p in db.execute("SELECT user, peer FROM contacts")}
    finally:
        db.close()


@pytest.mark.asyncio
async def test_group_traffic_and_receipts_do_not_grant_presence(people: People,
                                                               relay: RelayProcess) -> None:
    alice, mallory = await people("alice", "mallory")
    group = await mallory.groups.create("strangers", ["alice"])
    await mallory.send_text_to(group, "hello group")
    await mallory.send_text("alice", "hi alice, 1:1")
    await alice.sync()  # receipts to mallory
    await alice.send_text_to(group, "hi all")
    await alice.sync()
    await mallory.sync()
    assert [m.text for m in await mallory.cache.messages.history(group, 5)][-1] == "hi all"
    # alice sent mallory receipts and her sender key, and wrote only to the group
    assert (alice.user, mallory.user) not in contacts(relay)
    assert (mallory.user, alice.user) in contacts(relay)  # mallory wrote to her
    await alice.send_text("mallory", "hello mallory")  # the user writes: a contact
    assert (alice.user, mallory.user) in contacts(relay)
