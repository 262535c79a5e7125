"""The storage contract's fixtures: every test in this folder runs against every backend.

A test takes ``store`` (an open store with no limits) or ``make_store`` (an opener taking
the backend's limits: queue_max, queue_bytes_max, queue_share, reactions_max, otk_max).
PostgreSQL (TENCHAT_TEST_POSTGRES, else the local server) gives each store a schema of
its own, dropped after the test; unreachable, its tests are skipped with the reason.
Both run on ``clock``, a settable clock in ms. Adding a backend is one entry in
BACKENDS: a function opening an empty store of it with those keyword arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from tenchat.common.errors import ProtocolError
from tenchat.relay.storage import SQLiteStore, Store
from tenchat.relay.storage.postgres import PostgresStore
from tests.support.services import postgres_url

T0 = 1_700_000_000_000  # the clock's start (ms)


class Clock:
    """The store's clock: ``now`` until a test moves it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def _sqlite(tmp_path: Path, **kw: Any) -> Store:
    return SQLiteStore(tmp_path / "relay.sqlite3", sync="normal", **kw)


def _postgres(tmp_path: Path, **kw: Any) -> Store:
    """A store in a schema of its own (named after its directory), dropped after the test
    (make_store)."""
    schema = "test_" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:24]
    return PostgresStore(postgres_url(), schema=schema, **kw)


# name -> (tmp_path, **limits and clock) -> an unopened, empty store
BACKENDS: dict[str, Callable[..., Store]] = {"sqlite": _sqlite, "postgresql": _postgres}

StoreOpener = Callable[..., contextlib.AbstractAsyncContextManager[Store]]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Callable[..., Store]:
    return BACKENDS[request.param]


@pytest_asyncio.fixture
async def make_store(
    backend: Callable[..., Store], tmp_path: Path, clock: Clock
) -> AsyncIterator[StoreOpener]:
    """Open stores of the backend under test (each on its own empty storage)."""
    count = 0

    @contextlib.asynccontextmanager
    async def opener(**limits: Any) -> AsyncIterator[Store]:
        nonlocal count
        count += 1
        place = tmp_path / f"store{count}"
        place.mkdir()
        store = backend(place, clock=clock, **limits)
        if isinstance(store, PostgresStore):
            schemas.append(store.schema)
        async with store:
            yield store

    schemas: list[str | None] = []
    yield opener
    if schemas:
        conn = await asyncpg.connect(postgres_url())
        try:
            for schema in schemas:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest_asyncio.fixture
async def store(make_store: StoreOpener) -> AsyncIterator[Store]:
    async with make_store() as opened:
        yield opened


def uid() -> bytes:
    """A new identity (a 32-byte public key, as the store sees it)."""
    return os.urandom(32)


async def refused(fut: asyncio.Future[Any], code: str) -> None:
    """The write was refused with ``code``."""
    with pytest.raises(ProtocolError) as info:
        await fut
    assert info.value.code == code
