"""The relay's storage: one interface, and its SQLite implementation.

All writes go through one writer task that commits in batches (group commit):
it takes everything queued (up to ``batch_max``), applies it in one
transaction, commits, and only then resolves the callers' futures — so a
``stored`` answer always follows the commit that holds the message. Reads use
a second connection and never wait for the writer (WAL).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import aiosqlite

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Deliver, OneTimePrekey, SignedPrekey

__all__ = ["Store", "SQLiteStore", "HandleRecord", "BundleRecord", "Stored", "CommitListener"]

log = logging.getLogger("tenchat.relay.store")

T = TypeVar("T")

DEDUPE_WINDOW_MS: Final = 7 * 24 * 3600 * 1000  # how long a retry is recognised after storing
_PRUNE_EVERY_MS: Final = 3600 * 1000


@dataclass(frozen=True, slots=True)
class HandleRecord:
    handle: str
    user: bytes
    sig: bytes


@dataclass(frozen=True, slots=True)
class BundleRecord:
    spk: SignedPrekey
    otk: OneTimePrekey | None
    otk_count: int  # one-time prekeys left after this fetch


@dataclass(frozen=True, slots=True)
class Stored:
    seq: int
    at: int


# Called synchronously, right after a commit, with the stored messages in seq order.
CommitListener = Callable[[list[tuple[bytes, Deliver]]], None]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Store(abc.ABC):
    """Storage of handles, prekeys and message queues, with an ``async with`` lifecycle.

    Write methods are plain functions returning a future: calling them queues the
    write in call order; the future resolves after the commit (or raises
    ProtocolError for a refused write, which then changed nothing).
    """

    on_commit: CommitListener | None = None

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Commit everything queued, resolve its futures, then release the storage."""

    # --- reads --------------------------------------------------------------------------

    @abc.abstractmethod
    async def handle_by_name(self, handle: str) -> HandleRecord | None: ...

    @abc.abstractmethod
    async def handle_by_user(self, user: bytes) -> HandleRecord | None: ...

    @abc.abstractmethod
    async def otk_count(self, user: bytes) -> int: ...

    @abc.abstractmethod
    async def user_exists(self, user: bytes) -> bool:
        """True if ``user`` has registered a handle or a signed prekey."""

    @abc.abstractmethod
    async def pending(self, user: bytes, after: int, limit: int) -> list[Deliver]:
        """Up to ``limit`` queued messages of ``user`` with seq > ``after``, ascending."""

    # --- writes -------------------------------------------------------------------------

    @abc.abstractmethod
    def register(self, user: bytes, handle: str, sig: bytes) -> asyncio.Future[HandleRecord]:
        """Bind a canonical handle; handle_taken / forbidden (already holds another)."""

    @abc.abstractmethod
    def publish_prekeys(
        self, user: bytes, spk: SignedPrekey | None, otks: Sequence[OneTimePrekey]
    ) -> asyncio.Future[int]:
        """Replace the signed prekey and/or add one-time prekeys; the new otk count."""

    @abc.abstractmethod
    def take_bundle(self, user: bytes) -> asyncio.Future[BundleRecord | None]:
        """The signed prekey and one one-time prekey, removed; None without a spk."""

    @abc.abstractmethod
    def enqueue(
        self, recipient: bytes, sender: bytes, msg_id: bytes, body: bytes
    ) -> asyncio.Future[Stored]:
        """Queue a message; a retry with the same (sender, msg_id) gets the original."""

    @abc.abstractmethod
    def ack(self, user: bytes, seqs: Sequence[int]) -> asyncio.Future[None]:
        """Delete messages of ``user``'s queue; forbidden (nothing deleted) if any seq
        is in another identity's queue. Seqs in no queue (already acked) are ignored."""


# --- SQLite ------------------------------------------------------------------------------

# Versioned migrations: index i brings the schema from user_version i to i + 1.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE handles (
        handle TEXT PRIMARY KEY,
        user BLOB NOT NULL UNIQUE,
        sig BLOB NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE signed_prekeys (
        user BLOB PRIMARY KEY,
        key_id INTEGER NOT NULL,
        pub BLOB NOT NULL,
        sig BLOB NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE one_time_prekeys (
        user BLOB NOT NULL,
        key_id INTEGER NOT NULL,
        pub BLOB NOT NULL,
        PRIMARY KEY (user, key_id)
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient BLOB NOT NULL,
        sender BLOB NOT NULL,
        msg_id BLOB NOT NULL,
        at INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX messages_queue ON messages (recipient, seq);
    -- Outlives the message itself, so a retry after the recipient's ack is still recognised.
    CREATE TABLE sent (
        sender BLOB NOT NULL,
        msg_id BLOB NOT NULL,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (sender, msg_id)
    ) WITHOUT ROWID;
    """,
)


@dataclass(slots=True)
class _Op:
    fut: asyncio.Future[Any]


@dataclass(slots=True)
class _Send(_Op):
    recipient: bytes
    sender: bytes
    msg_id: bytes
    body: bytes


@dataclass(slots=True)
class _Ack(_Op):
    user: bytes
    seqs: Sequence[int]


@dataclass(slots=True)
class _Register(_Op):
    user: bytes
    handle: str
    sig: bytes


@dataclass(slots=True)
class _Publish(_Op):
    user: bytes
    spk: SignedPrekey | None
    otks: Sequence[OneTimePrekey]


@dataclass(slots=True)
class _TakeBundle(_Op):
    user: bytes


@dataclass(slots=True)
class _Batch:
    """What one transaction produced: answers to hand out and messages to push."""

    results: list[tuple[asyncio.Future[Any], Any]] = field(default_factory=list)
    stored: list[tuple[bytes, Deliver]] = field(default_factory=list)


_STOP: Final = object()


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class SQLiteStore(Store):
    """One SQLite file in WAL mode; one writer connection, one reader connection."""

    def __init__(
        self,
        path: Path,
        *,
        sync: str = "full",
        batch_max: int = 2000,
        otk_max: int = 500,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.path = path
        self.sync = sync  # "full" or "normal", see Config.sync
        self.batch_max = batch_max
        self.otk_max = otk_max
        self._clock = clock
        self._db: aiosqlite.Connection | None = None  # the writer's
        self._rdb: aiosqlite.Connection | None = None  # reads
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._next_seq = 0
        self._last_prune = 0
        # Identities seen to exist; nothing is ever unregistered, so this only grows.
        self._known: set[bytes] = set()

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        self._db = db
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(f"PRAGMA synchronous={'FULL' if self.sync == 'full' else 'NORMAL'}")
        await db.execute("PRAGMA busy_timeout=5000")
        await self._migrate(db)
        rows = await db.execute_fetchall(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),"
            " coalesce((SELECT max(seq) FROM messages), 0))"
        )
        self._next_seq = next(iter(rows))[0]
        self._rdb = await aiosqlite.connect(self.path, isolation_level=None)
        await self._rdb.execute("PRAGMA busy_timeout=5000")
        await self._rdb.execute("PRAGMA query_only=ON")
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        rows = await db.execute_fetchall("PRAGMA user_version")
        version = next(iter(rows))[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema version {version}, newer than this relay"
                f" ({len(MIGRATIONS)})"
            )
        for target in range(version + 1, len(MIGRATIONS) + 1):
            # executescript would commit on its own; run the statements in one transaction.
            await db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in MIGRATIONS[target - 1].split(";"):
                    if stmt.strip():
                        await db.execute(stmt)
                await db.execute(f"PRAGMA user_version={target}")
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            log.info("migrated %s to schema version %d", self.path.name, target)

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._queue.put_nowait(_STOP)
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        for conn in (self._rdb, self._db):
            if conn is not None:
                await conn.close()
        self._rdb = self._db = None

    # --- reads --------------------------------------------------------------------------

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        assert self._rdb is not None, "store is not open"
        return list(await self._rdb.execute_fetchall(sql, params))

    async def handle_by_name(self, handle: str) -> HandleRecord | None:
        rows = await self._read("SELECT handle, user, sig FROM handles WHERE handle = ?", (handle,))
        return HandleRecord(*rows[0]) if rows else None

    async def handle_by_user(self, user: bytes) -> HandleRecord | None:
        rows = await self._read("SELECT handle, user, sig FROM handles WHERE user = ?", (user,))
        return HandleRecord(*rows[0]) if rows else None

    async def otk_count(self, user: bytes) -> int:
        rows = await self._read("SELECT count(*) FROM one_time_prekeys WHERE user = ?", (user,))
        return int(rows[0][0])

    async def user_exists(self, user: bytes) -> bool:
        if user in self._known:
            return True
        rows = await self._read(
            "SELECT EXISTS (SELECT 1 FROM handles WHERE user = ?)"
            " OR EXISTS (SELECT 1 FROM signed_prekeys WHERE user = ?)",
            (user, user),
        )
        if rows[0][0]:
            self._known.add(user)
            return True
        return False

    async def pending(self, user: bytes, after: int, limit: int) -> list[Deliver]:
        rows = await self._read(
            "SELECT seq, msg_id, sender, at, body FROM messages"
            " WHERE recipient = ? AND seq > ? ORDER BY seq LIMIT ?",
            (user, after, limit),
        )
        return [Deliver(seq=s, msg=m, sender=f, at=a, body=b) for s, m, f, a, b in rows]

    # --- writes: queueing -----------------------------------------------------------------

    def _submit(self, op_type: type[_Op], *args: Any) -> asyncio.Future[Any]:
        if self._closing or self._writer is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "the relay is shutting down")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(op_type(fut, *args))
        return fut

    def register(self, user: bytes, handle: str, sig: bytes) -> asyncio.Future[HandleRecord]:
        return self._submit(_Register, user, handle, sig)

    def publish_prekeys(
        self, user: bytes, spk: SignedPrekey | None, otks: Sequence[OneTimePrekey]
    ) -> asyncio.Future[int]:
        return self._submit(_Publish, user, spk, otks)

    def take_bundle(self, user: bytes) -> asyncio.Future[BundleRecord | None]:
        return self._submit(_TakeBundle, user)

    def enqueue(
        self, recipient: bytes, sender: bytes, msg_id: bytes, body: bytes
    ) -> asyncio.Future[Stored]:
        return self._submit(_Send, recipient, sender, msg_id, body)

    def ack(self, user: bytes, seqs: Sequence[int]) -> asyncio.Future[None]:
        return self._submit(_Ack, user, seqs)

    # --- writes: the writer task ------------------------------------------------------------

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                break
            batch: list[_Op] = [first]  # type: ignore[list-item]
            while len(batch) < self.batch_max and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            await self._commit_batch(batch)

    async def _commit_batch(self, ops: list[_Op]) -> None:
        db = self._db
        assert db is not None
        out = _Batch()
        seq_before = self._next_seq
        try:
            await db.execute("BEGIN IMMEDIATE")
            for op_type, group in itertools.groupby(ops, key=type):
                await self._APPLY[op_type](self, list(group), out)
            await self._maybe_prune(db)
            await db.execute("COMMIT")
        except Exception as exc:
            log.exception("write batch of %d failed; rolled back", len(ops))
            self._next_seq = seq_before
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            for op in ops:
                if not op.fut.done():
                    op.fut.set_exception(exc)
            return
        for fut, value in out.results:
            if fut.done():  # the caller went away
                continue
            if isinstance(value, BaseException):
                fut.set_exception(value)
            else:
                fut.set_result(value)
        if out.stored and self.on_commit is not None:
            try:
                self.on_commit(out.stored)
            except Exception:
                log.exception("commit listener failed")

    async def _maybe_prune(self, db: aiosqlite.Connection) -> None:
        now = self._clock()
        if now - self._last_prune >= _PRUNE_EVERY_MS:
            self._last_prune = now
            await db.execute("DELETE FROM sent WHERE at < ?", (now - DEDUPE_WINDOW_MS,))

    async def _apply_sends(self, ops: list[_Send], out: _Batch) -> None:
        db = self._db
        assert db is not None
        at = self._clock()
        # One look-up per chunk for earlier copies of these messages (retries), no per-row awaits.
        keys = list({(op.sender, op.msg_id) for op in ops})
        known: dict[tuple[bytes, bytes], Stored] = {}
        for chunk in _chunks(keys, 400):
            # A join, not "(sender, msg_id) IN (VALUES ...)": SQLite scans the table for that.
            rows = await db.execute_fetchall(
                "SELECT s.sender, s.msg_id, s.seq, s.at FROM (VALUES "
                + ",".join(["(?,?)"] * len(chunk))
                + ") AS k JOIN sent AS s ON s.sender = k.column1 AND s.msg_id = k.column2",
                [v for key in chunk for v in key],
            )
            for sender, msg_id, seq, at0 in rows:
                known[(sender, msg_id)] = Stored(seq, at0)
        messages: list[tuple[int, bytes, bytes, bytes, int, bytes]] = []
        sent: list[tuple[bytes, bytes, int, int]] = []
        for op in ops:
            key = (op.sender, op.msg_id)
            stored = known.get(key)
            if stored is None:
                # The writer is the only one inserting, so it can number messages itself.
                self._next_seq += 1
                stored = known[key] = Stored(self._next_seq, at)
                messages.append((stored.seq, op.recipient, op.sender, op.msg_id, at, op.body))
                sent.append((op.sender, op.msg_id, stored.seq, at))
                out.stored.append(
                    (op.recipient, Deliver(stored.seq, op.msg_id, op.sender, at, op.body))
                )
            out.results.append((op.fut, stored))
        if messages:
            await db.executemany(
                "INSERT INTO messages (seq, recipient, sender, msg_id, at, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                messages,
            )
            await db.executemany(
                "INSERT INTO sent (sender, msg_id, seq, at) VALUES (?, ?, ?, ?)", sent
            )

    async def _apply_acks(self, ops: list[_Ack], out: _Batch) -> None:
        db = self._db
        assert db is not None
        seqs = sorted({s for op in ops for s in op.seqs})
        owner: dict[int, bytes] = {}
        for chunk in _chunks(seqs, 900):
            rows = await db.execute_fetchall(
                f"SELECT seq, recipient FROM messages WHERE seq IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            owner.update((seq, recipient) for seq, recipient in rows)
        doomed: list[tuple[int]] = []
        for op in ops:
            if any(owner.get(s, op.user) != op.user for s in op.seqs):
                out.results.append(
                    (op.fut, ProtocolError(ErrorCode.FORBIDDEN, "a seq is in another queue"))
                )
                continue
            doomed.extend((s,) for s in op.seqs if s in owner)
            out.results.append((op.fut, None))
        if doomed:
            await db.executemany("DELETE FROM messages WHERE seq = ?", doomed)

    async def _apply_registers(self, ops: list[_Register], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            rows = list(
                await db.execute_fetchall(
                    "SELECT handle, user, sig FROM handles WHERE handle = ? OR user = ?",
                    (op.handle, op.user),
                )
            )
            by_name = next((HandleRecord(*r) for r in rows if r[0] == op.handle), None)
            by_user = next((HandleRecord(*r) for r in rows if r[1] == op.user), None)
            result: Any
            if by_name is not None and by_name.user != op.user:
                result = ProtocolError(ErrorCode.HANDLE_TAKEN, f"@{op.handle} is taken")
            elif by_name is not None:
                result = by_name  # the owner registering again: nothing changes
            elif by_user is not None:
                result = ProtocolError(
                    ErrorCode.FORBIDDEN, f"this identity already holds @{by_user.handle}"
                )
            else:
                await db.execute(
                    "INSERT INTO handles (handle, user, sig, at) VALUES (?, ?, ?, ?)",
                    (op.handle, op.user, op.sig, self._clock()),
                )
                result = HandleRecord(op.handle, op.user, op.sig)
                self._known.add(op.user)
            out.results.append((op.fut, result))

    async def _apply_publishes(self, ops: list[_Publish], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            if op.spk is not None:
                await db.execute(
                    "INSERT OR REPLACE INTO signed_prekeys (user, key_id, pub, sig, at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (op.user, op.spk.key_id, op.spk.pub, op.spk.sig, self._clock()),
                )
                self._known.add(op.user)
            count = await self._count_otks(db, op.user)
            if op.otks and count < self.otk_max:
                fresh: dict[int, bytes] = {}
                for otk in op.otks:
                    fresh.setdefault(otk.key_id, otk.pub)  # first copy of a key_id wins
                for chunk in _chunks(list(fresh), 900):
                    rows = await db.execute_fetchall(
                        "SELECT key_id FROM one_time_prekeys WHERE user = ? AND key_id IN ("
                        + ",".join("?" * len(chunk))
                        + ")",
                        [op.user, *chunk],
                    )
                    for (key_id,) in rows:
                        del fresh[key_id]
                rows_to_add = [(op.user, k, p) for k, p in fresh.items()][: self.otk_max - count]
                await db.executemany(
                    "INSERT INTO one_time_prekeys (user, key_id, pub) VALUES (?, ?, ?)",
                    rows_to_add,
                )
                count += len(rows_to_add)
            out.results.append((op.fut, count))

    async def _apply_take_bundles(self, ops: list[_TakeBundle], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            rows = list(
                await db.execute_fetchall(
                    "SELECT key_id, pub, sig FROM signed_prekeys WHERE user = ?", (op.user,)
                )
            )
            if not rows:
                out.results.append((op.fut, None))
                continue
            spk = SignedPrekey(*rows[0])
            rows = list(
                await db.execute_fetchall(
                    "SELECT key_id, pub FROM one_time_prekeys WHERE user = ?"
                    " ORDER BY key_id LIMIT 1",
                    (op.user,),
                )
            )
            otk = OneTimePrekey(*rows[0]) if rows else None
            if otk is not None:
                await db.execute(
                    "DELETE FROM one_time_prekeys WHERE user = ? AND key_id = ?",
                    (op.user, otk.key_id),
                )
            count = await self._count_otks(db, op.user)
            out.results.append((op.fut, BundleRecord(spk, otk, count)))

    @staticmethod
    async def _count_otks(db: aiosqlite.Connection, user: bytes) -> int:
        rows = await db.execute_fetchall(
            "SELECT count(*) FROM one_time_prekeys WHERE user = ?", (user,)
        )
        return int(next(iter(rows))[0])

    _APPLY: Final[dict[type[_Op], Callable[..., Any]]] = {
        _Send: _apply_sends,
        _Ack: _apply_acks,
        _Register: _apply_registers,
        _Publish: _apply_publishes,
        _TakeBundle: _apply_take_bundles,
    }
