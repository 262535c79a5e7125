"""PostgreSQL: a write batch that deadlocks with another node's transaction is retried
one write per transaction, not answered `unavailable` (relay/storage/writer.py).

Two nodes' batches can take the same advisory locks in different orders: each run of
writes takes its own locks in key order, but a batch is several runs. Here the other
node is a connection the test drives, so the cycle is certain: it holds Y's lock; the
store's batch of two uploads takes X's lock, then waits for Y's; the connection then asks
for X's. The store's transaction is the one PostgreSQL aborts (the connection waits 10 s
before looking for deadlocks, the store's backend 1 s).
"""

from __future__ import annotations

import asyncio
import os

from tenchat.relay.storage.postgres import PostgresStore
from tenchat.relay.storage.postgres.base import lock_keys
from tests.support.services import postgres_schema, postgres_url
from tests.support.wsclient import async_test


@async_test
async def test_a_batch_that_deadlocks_is_retried_write_by_write() -> None:
    async with postgres_schema("test_deadlock") as (other, schema):
        store = PostgresStore(postgres_url(), schema=schema)
        async with store:
            x, y = os.urandom(32), os.urandom(32)
            await other.execute("SET deadlock_timeout = '10s'")
            tx = other.transaction()
            await tx.start()
            await other.execute("SELECT pg_advisory_xact_lock($1)", lock_keys([y])[0])
            # queued together: one batch, one run of blob_begin — X's lock, then Y's
            first = store.blob_begin(x, os.urandom(32), 100, quota=1000)
            second = store.blob_begin(y, os.urandom(32), 100, quota=1000)
            await asyncio.sleep(0.3)  # the store's transaction holds X, waits for Y
            # X: the cycle; PostgreSQL aborts the store's transaction after its 1 s
            async with asyncio.timeout(8):
                await other.execute("SELECT pg_advisory_xact_lock($1)", lock_keys([x])[0])
            await tx.commit()  # the retries can take both locks now
            async with asyncio.timeout(8):
                begun = await asyncio.gather(first, second, return_exceptions=True)
            assert [getattr(b, "new", b) for b in begun] == [True, True]
            assert (await store.stats())["uploads"] == 2
