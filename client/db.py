"""One SQLite connection driven from one worker thread, for the local cache.

This replaces aiosqlite in the client: the cache needs one thing aiosqlite keeps private —
running a whole synchronous function in the connection's thread (one hand-off for a hot
path such as a typing indicator or a batch of signals, instead of one per statement). Here
that is :meth:`Database.run`, public. The rest is the small part of aiosqlite's interface
the cache uses (``execute`` as an awaitable or an ``async with``, ``executemany``,
``executescript``, ``commit``, ``rollback``), with each statement's rows fetched in the
same hand-off as the statement (aiosqlite takes a second one for ``fetchall``).

With a key, the file is a SQLCipher database (``sqlcipher3``: SQLite with every page
encrypted with AES-256 and authenticated with HMAC-SHA512), opened with the raw 32-byte
key (no passphrase KDF: the key comes out of the keystore, which the passphrase unlocks
with Argon2id). :func:`encrypt_in_place` turns a plain cache into an encrypted one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

__all__ = ["Database", "Result", "connect", "encrypt_in_place", "is_plain",
           "operational_errors", "cipher_module", "open_encrypted"]

PLAIN_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every unencrypted database

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


def cipher_module() -> Any:
    """sqlcipher3's DB-API module (imported on first use: a 20 MB library)."""
    return importlib.import_module("sqlcipher3.dbapi2")


def operational_errors() -> tuple[type[Exception], ...]:
    """OperationalError of either driver: catch these around a statement that may fail."""
    return (sqlite3.OperationalError, cipher_module().OperationalError)


def _key_pragma(key: bytes) -> str:
    if len(key) != 32:
        raise ValueError("a cache key is 32 bytes")
    return f"\"x'{key.hex()}'\""  # SQLCipher's raw-key syntax: no KDF


def open_encrypted(path: Path, key: bytes, **connect_args: Any) -> sqlite3.Connection:
    """A SQLCipher connection to ``path`` (made if missing) under ``key``; sqlcipher3's
    DatabaseError ("file is not a database") from the first read if the key is wrong."""
    mod = cipher_module()
    conn = mod.connect(str(path), **connect_args)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")  # a wrong key: our error, no log
        conn.execute(f"PRAGMA key = {_key_pragma(key)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn  # type: ignore[no-any-return]


def is_plain(path: Path) -> bool:
    """``path`` is an unencrypted SQLite database (not missing, empty or encrypted)."""
    try:
        with path.open("rb") as fh:
            return fh.read(16) == PLAIN_HEADER
    except FileNotFoundError:
        return False


def _zero(path: Path) -> None:
    """Overwrite a file with zeros, then remove it (the best a file system allows: its
    old blocks are rewritten where it does not copy on write)."""
    with contextlib.suppress(FileNotFoundError):
        size = path.stat().st_size
        with path.open("r+b") as fh:
            for _ in range(0, size, 1 << 20):
                fh.write(bytes(min(1 << 20, size - fh.tell())))
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()


def encrypt_in_place(path: Path, key: bytes) -> bool:
    """Turn the plain database ``path`` into a SQLCipher one under ``key`` (its schema
    version kept): exported next to it (``sqlcipher_export``), synced, renamed over it; the
    plain copy is zeroed and removed, its WAL too. False if ``path`` was not plain. A crash
    leaves either the plain file or the encrypted one, and at most a stray copy, which the
    next call zeroes. Synchronous: call it in a thread, with the home's lock held."""
    plain_copy = path.with_name(path.name + ".plain")
    tmp = path.with_name(path.name + ".encrypting")
    _zero(plain_copy)  # a crash after the rename last time
    if not is_plain(path):
        return False
    tmp.unlink(missing_ok=True)
    mod = cipher_module()
    conn = mod.connect(str(path))  # no key: reads the plain file
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        quoted = str(tmp).replace("'", "''")
        conn.execute(f"ATTACH DATABASE '{quoted}' AS encrypted KEY {_key_pragma(key)}")
        conn.execute("SELECT sqlcipher_export('encrypted')")
        conn.execute(f"PRAGMA encrypted.user_version = {int(version)}")
        conn.execute("DETACH DATABASE encrypted")
    finally:
        conn.close()
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.link(path, plain_copy)  # keep the plain inode reachable, to zero it after the rename
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    for leftover in (plain_copy, path.with_name(path.name + "-wal"),
                     path.with_name(path.name + "-shm")):
        _zero(leftover)
    return True


async def connect(path: Path, key: bytes | None = None) -> Database:
    """Open ``path`` in a new worker thread (the connection is made there, and used only
    there: SQLite's default threading checks stay meaningful); with ``key``, as a
    SQLCipher database."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tenchat-cache")
    loop = asyncio.get_running_loop()
    try:
        if key is None:
            conn = await loop.run_in_executor(executor, sqlite3.connect, str(path))
        else:
            conn = await loop.run_in_executor(executor, open_encrypted, path, key)
    except BaseException:
        executor.shutdown(wait=False)
        raise
    return Database(conn, executor)
