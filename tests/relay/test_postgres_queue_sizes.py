"""PostgreSQL: the migration that adds the queue-size counters (relay/storage/postgres/
queues.py) counts them from the messages already queued, so the caps hold exactly on a
database that had messages before it."""

from __future__ import annotations

import os

import pytest

from tenchat.common.errors import ProtocolError
from tenchat.relay.storage.postgres import PostgresStore
from tenchat.relay.storage.postgres.schema import MIGRATIONS
from tests.support.services import postgres_schema, postgres_url
from tests.support.wsclient import async_test

# the schema version before the counters (the migration that adds them, 0-based)
_BEFORE = next(i for i, m in enumerate(MIGRATIONS) if "CREATE TABLE queue_sizes" in m)


@async_test
async def test_the_migration_counts_the_queued_messages() -> None:
    bob, alice, carol = os.urandom(32), os.urandom(32), os.urandom(32)
    async with postgres_schema("test_qs") as (conn, schema):
        await conn.execute(f'SET search_path = "{schema}"')
        for migration in MIGRATIONS[:_BEFORE]:
            await conn.execute(migration)
        await conn.execute("CREATE TABLE schema_version (version integer NOT NULL);"
                           f" INSERT INTO schema_version VALUES ({_BEFORE})")
        queued = [(bob, alice, 10), (bob, alice, 20), (bob, carol, 5), (carol, bob, 7)]
        await conn.executemany(
            "INSERT INTO messages (seq, recipient, sender, msg_id, at, body)"
            " VALUES (nextval('message_seq'), $1, $2, $3, 0, $4)",
            [(r, s, os.urandom(16), b"x" * n) for r, s, n in queued])
        store = PostgresStore(postgres_url(), schema=schema, queue_max=4,
                              queue_bytes_max=50, queue_share=50)
        async with store:
            sizes = {(bytes(r), bytes(s)): (m, b) for r, s, m, b in await conn.fetch(
                "SELECT recipient, sender, messages, bytes FROM queue_sizes WHERE NOT taken")}
            assert sizes == {(bob, alice): (2, 30), (bob, carol): (1, 5), (carol, bob): (1, 7)}
            # bob's queue: 3 messages, 35 bytes; alice has her share (2 of 4)
            for sender, body, code in ((alice, 1, "queue_share"), (carol, 16, "queue_full")):
                with pytest.raises(ProtocolError) as refused:
                    await store.enqueue(bob, sender, os.urandom(16), b"x" * body)
                assert refused.value.code == code
            await store.enqueue(bob, carol, os.urandom(16), b"x" * 15)  # 4 messages, 50 bytes
            assert await conn.fetchval(
                "SELECT sum(bytes) FROM queue_sizes WHERE recipient = $1 AND sender = $2",
                bob, carol) == 20
