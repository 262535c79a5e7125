"""The cache of one identity: one SQLite connection, one transaction at a time, and the
feature repositories that read and write it (``cache.messages``, ``cache.groups``, …)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from nacl import secret

from ...common.crypto.primitives import hkdf_sha256
from ..db import Database, connect, encrypt_in_place, operational_errors
from ..homelock import HomeLock
from . import schema
from .attachments import Attachments
from .audience import Audience
from .contacts import Contacts
from .conversations import Conversations
from .devices import Devices
from .groups import Groups
from .messages import Messages
from .outbox import OutboxStore
from .polls import Polls
from .prekeys import Prekeys
from .search import Search
from .sessions import Sessions
from .settings import Settings
from .stickers import Stickers
from .stories import Stories
from .txn import Txn

__all__ = ["Cache", "FILENAME", "cache_key"]

FILENAME = "cache.sqlite"
T = TypeVar("T")

log = logging.getLogger("tenchat.client.cache")


def cache_key(storage_key: bytes) -> bytes:
    """The SQLCipher key of HOME/cache.sqlite, from the keystore's storage key (which the
    passphrase unlocks): the whole file, its search index and WAL are encrypted with it."""
    return hkdf_sha256(storage_key, salt=b"", info=b"tenchat/cache-key/v1", length=32)


class Cache:
    """The cache of one identity. Every write happens inside :meth:`transaction`, which
    holds the home's lock (client/homelock.py) and commits once at the end, or rolls back:
    no caller takes the lock or commits by hand. The repositories share the connection,
    so one transaction spans them all."""

    def __init__(self, db: Database, storage_key: bytes, lock: HomeLock) -> None:
        self._db = db
        self._box = secret.SecretBox(storage_key)
        self.lock = lock  # one transaction at a time, in this process and across processes
        self._fts_secure = False  # FTS5 'secure-delete' is on (SQLite >= 3.42)
        self._scrub = False  # text was deleted or replaced: scrub() after the commit
        self._durable = True  # the open transaction's commit is fsynced
        self.settings = Settings(self)
        self.prekeys = Prekeys(self)
        self.sessions = Sessions(self)
        self.contacts = Contacts(self)
        self.messages = Messages(self)
        self.conversations = Conversations(self)
        self.search = Search(self)
        self.outbox = OutboxStore(self)
        self.attachments = Attachments(self)
        self.groups = Groups(self)
        self.audience = Audience(self)
        self.stories = Stories(self)
        self.polls = Polls(self)
        self.stickers = Stickers(self)
        self.devices = Devices(self)

    @classmethod
    async def open(cls, home: Path, storage_key: bytes, *, lock: HomeLock | None = None,
                   encrypted: bool = True) -> Cache:
        """Open (creating, migrating) HOME's cache, encrypted at rest with a key from
        ``storage_key`` (``encrypted=False``: a plain SQLite file, for the benchmark's side
        by side and the tests that read the file's pages). The cache owns ``lock``
        (default: a new HomeLock on ``home``) and closes it in :meth:`close`."""
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = lock or HomeLock(home)
        try:
            async with lock:  # opening may write (migrations, settings): one at a time
                return await cls._connect(home, storage_key, lock, encrypted)
        except BaseException:
            lock.close()
            raise

    @classmethod
    async def _connect(cls, home: Path, storage_key: bytes, lock: HomeLock,
                       encrypted: bool) -> Cache:
        path = home / FILENAME
        key = cache_key(storage_key) if encrypted else None
        # A plain cache (from before encryption at rest) is encrypted on first unlock.
        if key is not None and await asyncio.to_thread(encrypt_in_place, path, key):
            log.info("encrypted the cache %s", path)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        db = await connect(path, key)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA foreign_keys=ON")
            # Deleted and expired text is overwritten, not just unlinked (whatever this
            # SQLite build's default); see scrub() for the search index and the WAL.
            await db.execute("PRAGMA secure_delete=ON")
            await db.run(schema.migrate, db.conn)
        except BaseException:
            await db.close()
            raise
        cache = cls(db, storage_key, lock)
        try:  # SQLite >= 3.42: FTS5 deletes remove the terms themselves
            await db.execute(
                "INSERT INTO messages_fts(messages_fts, rank) VALUES ('secure-delete', 1)")
            await db.commit()
            cache._fts_secure = True
        except operational_errors():
            # The failed INSERT opened a write transaction: end it, or this connection
            # would hold the database's write lock until its first commit and every other
            # process on the home would fail with "database is locked".
            await db.rollback()
            cache._fts_secure = False
        return cache

    async def close(self) -> None:
        try:
            await self._db.close()
        finally:
            self.lock.close()

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Cache]:
        """``async with cache.transaction() as tx:`` — one unit of work: the home's lock
        is held throughout, and at the end everything written commits at once (or, if
        the block raises, rolls back). Not re-entrant: a block never opens another.

        ``durable=False`` makes :meth:`run` commit without the fsync: the commit survives
        a crash of this process but maybe not a power loss (the next durable commit syncs
        it too). Only for state whose loss is harmless — a receiving chain advanced by a typing
        indicator derives the same keys again. Never for a send: a sending chain that
        rolled back would reuse message keys."""
        async with self.lock:
            self._durable = durable
            try:
                yield self
                await self.checkpoint()
            except BaseException:
                await self._db.rollback()
                self._scrub = False
                raise
            finally:
                self._durable = True

    async def checkpoint(self) -> None:
        """Commit what the open transaction wrote so far and go on in it (the lock stays
        held): for what must be durable before the relay may act on it, e.g. prekeys
        stored before they are published."""
        assert self.lock.locked(), "checkpoint() outside cache.transaction()"
        if self._db.dirty:
            await self._db.commit()
        if self._scrub:
            await self.scrub()

    async def call(self, fn: Callable[[Txn], T]) -> T:
        """``fn`` on a synchronous view of the cache (:class:`Txn`) in the cache's own
        thread: one hand-off for many statements. Commits nothing (writes belong to the
        open transaction)."""
        return await self._db.run(lambda conn: fn(Txn(self, conn)), self._db.conn)

    async def run(self, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in the cache's own thread on a synchronous view of the cache
        (:class:`Txn`) and commit in the same hand-off: one thread hand-off for a whole
        short hot path (a typing indicator, a batch of signals) instead of one per
        statement. Only inside :meth:`transaction` (whose ``durable`` applies)."""
        assert self.lock.locked(), "run() outside cache.transaction()"
        result = await self._db.run(self._run, self._db.conn, fn, self._durable)
        self._db.dirty = False
        return result

    def _run(self, conn: sqlite3.Connection, fn: Callable[[Txn], T], durable: bool) -> T:
        # The fsync setting can't change inside a transaction: set before, reset after.
        relaxed = not durable and not conn.in_transaction
        if relaxed:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            result = fn(Txn(self, conn))
            conn.commit()
        finally:
            if relaxed:
                conn.execute("PRAGMA synchronous=FULL")
        return result

    def scrub_after_commit(self) -> None:
        """Text was deleted or replaced in this transaction: :meth:`scrub` once it commits."""
        self._scrub = True

    async def scrub(self) -> None:
        """Leave no copy of deleted, edited-away or expired text in the cache's files.

        secure_delete zeroes the rows themselves, but an FTS5 delete only adds a
        tombstone: the words stay in the index's older segments until they are merged
        (unless FTS5's own secure-delete, SQLite >= 3.42, is on), and the WAL keeps the
        old page images until a checkpoint. So: merge the index (``optimize``), then
        checkpoint and truncate the WAL. Runs after a commit that deleted text, which is
        rare (a delete, an edit, a disappearing message's time up)."""
        self._scrub = False
        if not self._fts_secure:
            await self._db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
            await self._db.commit()
        await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _seal(self, data: bytes) -> bytes:
        return bytes(self._box.encrypt(data))

    def _open(self, data: bytes) -> bytes:
        return self._box.decrypt(data)
