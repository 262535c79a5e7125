"""The PostgreSQL store when the server cuts its connections (as a restart does): a
write is answered ``unavailable`` (never ``internal``, never a false *stored*) or goes
through on a new connection, and the store works on afterwards with nothing lost or
doubled. Real PostgreSQL: the backends are ended with pg_terminate_backend."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import asyncpg
import pytest

from bench._postgres import scratch_database
from tenchat.common.errors import ProtocolError
from tenchat.relay.storage import storage_error
from tenchat.relay.storage.postgres import PostgresStore
from tests.support.wsclient import async_test


@pytest.fixture
def database(postgres_service: str) -> Iterator[str]:
    with scratch_database(postgres_service) as url:
        yield url


async def cut_connections(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await conn.close()


@async_test
async def test_cut_connections_are_unavailable_then_the_store_resumes(database: str) -> None:
    alice, bob = os.urandom(32), os.urandom(32)
    async with PostgresStore(database) as store:
        before = await store.enqueue(bob, alice, os.urandom(16), b"before")
        assert await cut_connections(database) >= 2  # the writer's and a reader's
        retry_id = os.urandom(16)
        try:
            await store.enqueue(bob, alice, retry_id, b"during")
        except ProtocolError as exc:
            assert exc.code == "unavailable", exc
        assert store.last_write_error is None or "out of reach" in store.last_write_error
        # the client's retry with the same id: stored once, whatever happened above
        during = await store.enqueue(bob, alice, retry_id, b"during")
        after = await store.enqueue(bob, alice, os.urandom(16), b"after")
        for _ in range(50):  # a reader that met the cut connection is replaced too
            try:
                pending = await store.pending(bob, 0, 10)
                break
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await asyncio.sleep(0.1)
        assert [(d.seq, d.body) for d in pending] == [
            (before.seq, b"before"), (during.seq, b"during"), (after.seq, b"after")]


def test_what_the_database_refusing_is_answered() -> None:
    full = storage_error(asyncpg.exceptions.DiskFullError("no space"))
    assert full is not None and full.code == "storage_full"
    for exc in (asyncpg.exceptions.AdminShutdownError("terminating"),
                asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
                ConnectionRefusedError(111, "refused")):
        refused = storage_error(exc)
        assert refused is not None and refused.code == "unavailable", exc
    assert storage_error(asyncpg.exceptions.UndefinedTableError("a bug")) is None
