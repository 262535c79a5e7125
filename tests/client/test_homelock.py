"""The home's lock (client/homelock.py) and what it relies on, without a relay."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tenchat.client.cache import Cache
from tenchat.client.homelock import HomeLock, HomeLocked, lock_timeout
from tenchat.common.errors import TenchatError
from tests.support.cache_file import open_cache_file


@pytest.mark.asyncio
async def test_two_holders_take_turns_and_a_wait_times_out(tmp_path: Path) -> None:
    # Two HomeLocks on one home conflict like two processes do (flock belongs to the
    # open file, not the process).
    first, second = HomeLock(tmp_path, timeout=0.2), HomeLock(tmp_path, timeout=5)
    order: list[str] = []
    async with first:
        started = time.monotonic()
        with pytest.raises(HomeLocked, match="another tenchat process has held"):
            await HomeLock(tmp_path, timeout=0.2).acquire()
        assert 0.2 <= time.monotonic() - started < 5

        async def later() -> None:
            async with second:
                order.append("second")

        task = asyncio.create_task(later())
        await asyncio.sleep(0.05)
        order.append("first")
    await asyncio.wait_for(task, 5)
    assert order == ["first", "second"]
    # A holder that raises releases it.
    with pytest.raises(RuntimeError):
        async with first:
            raise RuntimeError("boom")
    async with second:
        pass
    for lock in (first, second):
        lock.close()
    assert oct((tmp_path / "lock").stat().st_mode & 0o777) == "0o600"


def test_the_wait_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENCHAT_LOCK_TIMEOUT", raising=False)
    assert lock_timeout() == 30
    monkeypatch.setenv("TENCHAT_LOCK_TIMEOUT", "2.5")
    assert lock_timeout() == 2.5
    monkeypatch.setenv("TENCHAT_LOCK_TIMEOUT", "soon")
    with pytest.raises(TenchatError, match="TENCHAT_LOCK_TIMEOUT"):
        lock_timeout()


@pytest.mark.asyncio
async def test_an_open_cache_leaves_the_database_free_for_other_processes(tmp_path: Path) -> None:
    """Opening must not leave a write transaction behind (a failed FTS5 option on SQLite
    < 3.42 did): other processes on the home would fail with "database is locked"."""
    key = os.urandom(32)
    cache = await Cache.open(tmp_path, key)
    try:
        other = open_cache_file(tmp_path / "cache.sqlite", key, timeout=0.5)
        other.execute("INSERT OR REPLACE INTO meta VALUES ('k', 1)")
        other.commit()
        other.close()
        async with cache.transaction():
            await cache.settings.set("mine", 2)  # and this one can write after it
    finally:
        await cache.close()
