"""The SQLite backend's core: connections, migrations, and the writer's transaction.

One SQLite file in WAL mode; one writer connection, one reader connection. Reads use
the reader and never wait for the writer. Writes (``@write`` functions of the feature
modules next to this one) run in the writer connection's thread: one hand-off per
batch, the whole transaction in plain sqlite3 calls, no await per statement. With
``writer="process"`` (the relay's default) that thread is in a process of its own, the
same store run by process.py, so it does not share the event loop's GIL.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import aiosqlite

from tenchat.common.errors import ProtocolError

from ..limits import StoreLimits, now_ms
from ..writer import BatchWriter, Call, Committed
from .schema import migrate
from .sent_log import SentLog

if TYPE_CHECKING:
    from .process import WriterProcess

__all__ = ["SQLiteBase", "Tx", "chunks", "marks", "now_ms", "DEDUPE_WINDOW_MS"]

T = TypeVar("T")

DEDUPE_WINDOW_MS: Final = 7 * 24 * 3600 * 1000  # how long a retry is recognised after storing
_PRUNE_EVERY_MS: Final = 3600 * 1000
WRITER_CACHE_KIB: Final = 64 * 1024  # the writer connection's SQLite page cache


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def marks(n: int) -> str:
    """``?,?,…`` for an IN list of ``n`` values."""
    return ",".join("?" * n)


class Tx:
    """One write transaction, in the SQLite thread: the connection (``db``), what the
    commit will announce (``out``), rows to insert at the end of the current run of
    calls of one write (``defer``: one executemany instead of a statement per call), and
    ``run``, scratch state of that run (e.g. sends of it not inserted yet), which starts
    empty for each run."""

    __slots__ = ("db", "out", "run", "calls", "after_commit", "_deferred")

    def __init__(self, db: sqlite3.Connection, out: Committed) -> None:
        self.db = db
        self.out = out
        self.run: dict[str, Any] = {}
        # The current run's calls: a hot write may read for all of them at once, on its
        # first call (e.g. the dedupe keys of a run of sends, in one statement per 400).
        self.calls: list[Call] = []
        # What the writer's own state learns from this transaction, once it committed
        # (e.g. the dedupe keys it appended to sent_log): nothing of a rolled-back one.
        self.after_commit: list[Callable[[], None]] = []
        self._deferred: dict[str, list[tuple[Any, ...]]] = {}

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of a query; None if there is none."""
        return self.db.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.db.execute(sql, params).fetchall()

    def run_sql(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute a statement; its rowcount."""
        return self.db.execute(sql, params).rowcount

    def defer(self, sql: str, row: tuple[Any, ...]) -> None:
        self._deferred.setdefault(sql, []).append(row)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The list of rows deferred for ``sql`` (to append to directly, on a hot path)."""
        return self._deferred.setdefault(sql, [])

    def end_run(self) -> None:
        """Insert the deferred rows (in the order their statements were first used)."""
        for sql, rows in self._deferred.items():
            if rows:
                self.db.executemany(sql, rows)
        self._deferred.clear()
        self.run.clear()


class SQLiteBase(StoreLimits, BatchWriter[Tx]):
    """Connections, lifecycle and the writer state the feature modules share."""

    def __init__(
        self,
        path: Path,
        *,
        sync: str = "full",
        batch_max: int = 2000,
        otk_max: int = 500,
        queue_max: int = 0,
        queue_bytes_max: int = 0,
        queue_share: int = 100,
        reactions_max: int = 0,
        link_bytes_max: int = 64 * 1024 * 1024,
        clock: Callable[[], int] = now_ms,
        writer: str = "thread",
    ) -> None:
        if writer not in ("thread", "process"):
            raise ValueError(f"writer must be 'thread' or 'process', not {writer!r}")
        self._init_writer(batch_max)
        self._init_limits(otk_max=otk_max, queue_max=queue_max, queue_bytes_max=queue_bytes_max,
                          queue_share=queue_share, reactions_max=reactions_max,
                          link_bytes_max=link_bytes_max, clock=clock)
        self.path = path
        self.sync = sync  # "full" or "normal", see Config.sync
        self._db: aiosqlite.Connection | None = None  # the writer's
        self._rdb: aiosqlite.Connection | None = None  # reads
        # The writer is the only one inserting messages and group entries, so it numbers
        # them itself.
        self._next_seq = 0
        self._next_gseq = 0
        self._last_prune = 0
        # Users with at least one block (an over-estimate after unblocks): only sends to
        # them need a look-up in `blocks`.
        self._blockers: set[bytes] = set()
        # Identities seen to exist; nothing is ever unregistered, so this only grows.
        self._known: set[bytes] = set()
        # Queue lengths of recipients sent to lately (for queue_max). Only the writer inserts,
        # so a count can only be too high (after deletes it did not see): a full queue is
        # counted again before a send is refused.
        self._queued: dict[bytes, list[int]] = {}  # recipient -> [messages, body bytes]
        # The same per (recipient, sender), for queue_share.
        self._queued_from: dict[tuple[bytes, bytes], list[int]] = {}
        # The messages this writer queued lately and saw no delete of: seq -> (recipient,
        # body size, sender), what an ack needs of each row, without a read (an ack nearly
        # always names the latest). Added once committed; popped by an ack; cleared by any
        # other delete (_forget_queue_sizes). A seq not in it is read from `messages`.
        self._recent: dict[int, tuple[bytes, int, bytes]] = {}
        self._other_deletes = 0  # how many times that happened (a run started before it
        # does not add to _recent what it queued: the delete may have taken some of it)
        # (user, peer) pairs known to be in `contacts` (bounded; a miss is an INSERT OR
        # IGNORE, so it only costs a statement).
        self._contacts: set[tuple[bytes, bytes]] = set()
        # The dedupe keys of the latest sends (sent_log.py): the log's rows, and its fold.
        self._sent_log = SentLog()
        # writer="process": the child running the transactions, and what it is started
        # with; in the child, the users a batch saw block someone (for the relay's reads).
        self._child: WriterProcess | None = None
        self._child_settings: dict[str, Any] | None = None
        if writer == "process":
            self._child_settings = dict(
                path=path, sync=sync, batch_max=batch_max, otk_max=otk_max,
                queue_max=queue_max, queue_bytes_max=queue_bytes_max,
                queue_share=queue_share, reactions_max=reactions_max,
                link_bytes_max=link_bytes_max, clock=clock)
        self._blockers_added: list[bytes] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def writer_pid(self) -> int | None:
        """The writer process's pid (writer="process"), else None."""
        return self._child.pid if self._child is not None else None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._child_settings is not None:
            await self._open_child(self._child_settings)
        else:
            await self.open_writer()
        self._rdb = await aiosqlite.connect(self.path, isolation_level=None)
        await self._rdb.execute("PRAGMA busy_timeout=5000")
        await self._rdb.execute("PRAGMA query_only=ON")
        rows = await self._rdb.execute_fetchall("SELECT DISTINCT user FROM blocks")
        self._blockers = {user for (user,) in rows}
        self._start_writer()

    async def _open_child(self, settings: dict[str, Any]) -> None:
        from .process import WriterProcess

        child = WriterProcess(settings)  # pickles the settings: a test's lambda clock fails
        await child.start()  # it migrates the file and reads the writer's state
        self._child = child
        self.pipeline = 3

    async def open_writer(self) -> None:
        """Open the writer's connection (migrating the file) and read the writer's state;
        the writer process opens only this, and runs its transactions on its own thread
        (:meth:`transaction_now`), hence ``check_same_thread=False``."""
        db = await aiosqlite.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db = db
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(f"PRAGMA synchronous={'FULL' if self.sync == 'full' else 'NORMAL'}")
        await db.execute("PRAGMA busy_timeout=5000")
        # 64 MiB of page cache, not SQLite's 2 MiB: the `sent` dedupe keys (random, a week
        # of them) outgrow 2 MiB within seconds at saturation, and then an insert reads its
        # b-tree page back from the OS with a system call.
        await db.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        try:
            await migrate(db, self.path)
        except BaseException:
            await db.close()  # its thread would keep the process alive
            self._db = None
            raise
        rows = await db.execute_fetchall(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),"
            " coalesce((SELECT max(seq) FROM messages), 0))"
        )
        self._next_seq = next(iter(rows))[0]
        # last_gseq never goes down, even when the sweep deletes a log's newest entries.
        rows = await db.execute_fetchall(
            "SELECT max(coalesce((SELECT max(gseq) FROM group_log), 0),"
            " coalesce((SELECT max(last_gseq) FROM groups), 0))"
        )
        self._next_gseq = next(iter(rows))[0]
        await db._execute(self._sent_log.load, db._conn)

    @property
    def writer_connection(self) -> sqlite3.Connection:
        assert self._db is not None, "store is not open"
        return self._db._conn

    async def close(self) -> None:
        await self._stop_writer()
        if self._child is not None:
            await self._child.stop()
            self._child = None
        for conn in (self._rdb, self._db):
            if conn is not None:
                await conn.close()
        self._rdb = self._db = None

    # --- reads --------------------------------------------------------------------------

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        assert self._rdb is not None, "store is not open"
        return list(await self._rdb.execute_fetchall(sql, params))

    # --- the writer's transaction -------------------------------------------------------

    async def _transaction(self, calls: list[Call], out: Committed) -> None:
        if self._child is not None:
            self._blockers.update(await self._child.run(calls, out))
            return
        db = self._db
        assert db is not None, "store is not open"
        await db._execute(self.transaction_now, db._conn, calls, out)

    def transaction_now(self, conn: sqlite3.Connection, calls: list[Call],
                        out: Committed) -> None:
        """The transaction, in the calling thread (the writer connection's thread, or the
        writer process's only thread); if it fails, the writer's state is put back."""
        seq, gseq = self._next_seq, self._next_gseq
        try:
            self._transaction_sync(conn, calls, out)
        except BaseException:
            # Undo what the rolled-back calls told the writer's state: the counters, and
            # the caches that would otherwise claim rows that were never committed.
            self._next_seq, self._next_gseq = seq, gseq
            self._known.clear()
            self._contacts.clear()
            raise

    def _transaction_sync(
        self, conn: sqlite3.Connection, calls: list[Call], out: Committed
    ) -> None:
        """In the SQLite thread: the calls in order, each run of one write together."""
        tx = Tx(conn, out)
        conn.execute("BEGIN IMMEDIATE")
        try:
            # a fold step, before this transaction's sends (applied once it commits)
            if (fold := self._sent_log.step(conn, self._clock())) is not None:
                tx.after_commit.append(fold.committed)
            for fn, run in itertools.groupby(calls, key=attrgetter("fn")):
                tx.calls = list(run)
                for call in tx.calls:
                    try:
                        if call.kwargs:
                            result = fn(self, tx, *call.args, **call.kwargs)
                        else:
                            result = fn(self, tx, *call.args)
                    except ProtocolError as exc:  # raised before it wrote anything
                        result = exc
                    out.results.append((call.fut, result))
                tx.end_run()
            self._maybe_prune(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        for learn in tx.after_commit:
            learn()

    def _maybe_prune(self, conn: sqlite3.Connection) -> None:
        """Forget the dedupe keys of sends older than the dedupe window (hourly)."""
        now = self._clock()
        if now - self._last_prune >= _PRUNE_EVERY_MS:
            self._last_prune = now
            conn.execute("DELETE FROM sent WHERE at < ?", (now - DEDUPE_WINDOW_MS,))
            conn.execute("DELETE FROM group_sent WHERE at < ?", (now - DEDUPE_WINDOW_MS,))

    def _forget_queue_sizes(self) -> None:
        """Queued messages were deleted other than by an ack: count the queues again."""
        self._queued.clear()
        self._queued_from.clear()
        self._recent.clear()
        self._other_deletes += 1
