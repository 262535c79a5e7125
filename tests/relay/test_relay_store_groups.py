"""The group store in-process: the bulk member hook (for benchmarks) and one write per
group message whatever the group's size."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from tenchat.common.errors import ProtocolError
from tenchat.common.groups import decode_signed
from tenchat.relay.storage import GroupEntry, MembersChanged, SQLiteStore
from tests.support.groups import TestGroup
from tests.support.wsclient import async_test, user_of


@async_test
async def test_bulk_members_and_one_row_per_message(tmp_path: Path) -> None:
    events: list[MembersChanged | GroupEntry] = []
    async with SQLiteStore(tmp_path / "relay.sqlite3", sync="normal") as store:
        store.on_group_commit = events.extend
        owner = SigningKey.generate()
        g = TestGroup()
        record = g.record(owner, "create", name="big")
        change, _ = decode_signed(record)
        created = await store.group_change(change, record)
        members = [os.urandom(32) for _ in range(20_000)]
        assert await store.bulk_add_members(g.id, members) == len(members)
        assert await store.bulk_add_members(g.id, members[:10]) == 0  # already members
        with pytest.raises(ProtocolError) as info:
            await store.bulk_add_members(os.urandom(16), members[:1])
        assert info.value.code == "not_found"

        stored = await store.group_post(g.id, members[123], os.urandom(16), b"hi", 0)
        assert stored.seq > created.seq
        for user in (members[0], members[-1], user_of(owner)):
            items = await store.group_pending(g.id, user, 0, 10)
            assert [i.gseq for i in items][-1] == stored.seq
        assert (await store.group_head(g.id, members[5])).role == "member"  # type: ignore[union-attr]
        entries = [e for e in events if isinstance(e, GroupEntry)]
        assert [e.item.gseq for e in entries] == [created.seq, stored.seq]
        bulk = [e for e in events if isinstance(e, MembersChanged)]
        assert len(bulk[1].roles) == len(members)

    with sqlite3.connect(tmp_path / "relay.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM group_log").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM group_members").fetchone() == (20_001,)
