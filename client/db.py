"""One SQLite connection driven from one worker thread, for the local cache.

This replaces aiosqlite in the client: the cache needs one thing aiosqlite keeps private —
running a whole synchronous function in the connection's thread (one hand-off for a hot
path such as a typing indicator or a batch of signals, instead of one per statement). Here
that is :meth:`Database.run`, public. The rest is the small part of aiosqlite's interface
the cache uses (``execute`` as an awaitable or an ``async with``, ``executemany``,
``executescript``, ``commit``, ``rollback``), with each statement's rows fetched in the
same hand-off as the statement (aiosqlite takes a second one for ``fetchall``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

__all__ = ["Database", "Result", "connect"]

T = TypeVar("T")
P = ParamSpec("P")
Params = Sequence[Any] | dict[str, Any]


class Result:
    """What a statement returned: its rows (already fetched), rowcount and lastrowid."""

    __slots__ = ("rows", "rowcount", "lastrowid", "_next")

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int | None) -> None:
        self.rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self._next = 0

    async def fetchone(self) -> Any:
        if self._next >= len(self.rows):
            return None
        self._next += 1
        return self.rows[self._next - 1]

    async def fetchall(self) -> list[Any]:
        rest, self._next = self.rows[self._next:], len(self.rows)
        return rest


class _Statement:
    """``await db.execute(...)`` or ``async with db.execute(...) as cur``."""

    __slots__ = ("_db", "_sql", "_params")

    def __init__(self, db: Database, sql: str, params: Params) -> None:
        self._db, self._sql, self._params = db, sql, params

    def __await__(self) -> Generator[Any, None, Result]:
        return self._db.run(_execute, self._db.conn, self._sql, self._params).__await__()

    async def __aenter__(self) -> Result:
        return await self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        return None


def _execute(conn: sqlite3.Connection, sql: str, params: Params) -> Result:
    cur = conn.execute(sql, params)
    try:
        rows = cur.fetchall()
        return Result(rows, cur.rowcount, cur.lastrowid)
    finally:
        cur.close()


def _executemany(conn: sqlite3.Connection, sql: str, seq: Iterable[Params]) -> Result:
    cur = conn.executemany(sql, seq)
    try:
        return Result([], cur.rowcount, cur.lastrowid)
    finally:
        cur.close()


class Database:
    """A connection whose every call runs in its own single worker thread, in order."""

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self.conn = conn  # use only inside run(): it belongs to the worker thread
        self._executor = executor
        # Something ran since the last commit or rollback (so a commit may have work to
        # do); a caller that commits inside run() clears it.
        self.dirty = False
        self._closed = False

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args)`` in the connection's thread (pass ``self.conn`` to it as needed)."""
        loop = asyncio.get_running_loop()
        self.dirty = True
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def execute(self, sql: str, params: Params = ()) -> _Statement:
        return _Statement(self, sql, params)

    async def execute_fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        return (await self.execute(sql, params)).rows

    async def executemany(self, sql: str, seq: Iterable[Params]) -> Result:
        return await self.run(_executemany, self.conn, sql, list(seq))

    async def executescript(self, script: str) -> None:
        await self.run(self.conn.executescript, script)

    async def commit(self) -> None:
        await self.run(self.conn.commit)
        self.dirty = False

    async def rollback(self) -> None:
        await self.run(self.conn.rollback)
        self.dirty = False

    async def close(self) -> None:
        """Close the connection and its thread; closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.run(self.conn.close)
        finally:
            self._executor.shutdown(wait=False)


async def connect(path: Path) -> Database:
    """Open ``path`` in a new worker thread (the connection is made there, and used only
    there: SQLite's default threading checks stay meaningful)."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tenchat-cache")
    loop = asyncio.get_running_loop()
    try:
        conn = await loop.run_in_executor(executor, sqlite3.connect, str(path))
    except BaseException:
        executor.shutdown(wait=False)
        raise
    return Database(conn, executor)
