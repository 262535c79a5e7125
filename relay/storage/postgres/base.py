"""The PostgreSQL backend's core: connection pools, migrations, the writer's transaction.

Several relay nodes may share one database, so nothing a node keeps in memory may decide
what is stored: every check reads the database inside the write transaction, and what
must be counted or numbered cluster-wide is done under a lock held to the commit —
message seqs come from a sequence, a group's gseqs are handed out under its ``groups``
row lock (so each group's entries commit in gseq order, docs/design.md "Scale-out"),
and queue caps read their counters under a per-recipient advisory lock (queues.py).

Writes (``@write`` coroutines of the feature modules next to this one) run on one
writer connection, a batch per transaction (relay/storage/writer.py); reads use a small
pool of their own and never wait for the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from operator import attrgetter
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import asyncpg

from tenchat.common.errors import ProtocolError

from ..factory import storage_label
from ..limits import StoreLimits, now_ms
from ..writer import BatchWriter, Call, Committed
from .queues import QueueTally
from .schema import migrate

__all__ = ["PostgresBase", "Tx", "write", "now_ms", "DEDUPE_WINDOW_MS", "lock_keys"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="PostgresBase")

DEDUPE_WINDOW_MS: Final = 7 * 24 * 3600 * 1000  # how long a retry is recognised after storing
_PRUNE_EVERY_MS: Final = 3600 * 1000
_READERS: Final = 4  # connections in the read pool
# Writes that commute with each other (see _gathered): acks, then sends.
_COMMUTING: Final = {"ack": 0, "enqueue": 1}


def write(
    fn: Callable[Concatenate[S, Tx, P], Awaitable[R]],
) -> Callable[Concatenate[S, P], asyncio.Future[R]]:
    """Declare a write, as :func:`..writer.write` does for a plain function: ``fn(self,
    tx, *args)`` is a coroutine run in the writer's transaction; the method it becomes,
    ``(self, *args) -> Future[R]``, queues it."""

    @functools.wraps(fn)
    def submit(self: S, /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[R]:
        return self._submit(fn, args, kwargs)

    return submit


def lock_keys(keys: Iterable[bytes]) -> list[int]:
    """Advisory lock keys (signed 64-bit) of ids, sorted: locks taken in one order
    everywhere, so two nodes' transactions never wait for each other in a cycle."""
    return sorted({int.from_bytes(k[:8].ljust(8, b"\0"), "big", signed=True) for k in keys})


def _rowcount(status: str) -> int:
    """The row count of a command status ("DELETE 3", "INSERT 0 1"); 0 if none."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class Tx:
    """One write transaction: the connection, what the commit will announce (``out``),
    statements to run at the end of the current run of calls of one write (``defer``:
    one executemany instead of a statement per call), ``run``, scratch state of that run,
    ``calls``, the run's calls (a hot write reads for all of them on its first), and
    ``queues``, what the transaction changes in the queue sizes (queues.py), written at
    its end."""

    __slots__ = ("db", "out", "run", "calls", "queues", "last_run", "_deferred", "_finish")

    def __init__(self, db: asyncpg.Connection, out: Committed) -> None:
        self.db = db
        self.out = out
        self.run: dict[str, Any] = {}
        self.calls: list[Call] = []
        self.queues = QueueTally()
        # the transaction's last run of calls is running: its final statement may write
        # the queue tally too (one round trip less; messages.py)
        self.last_run = False
        self._deferred: dict[str, list[tuple[Any, ...]]] = {}
        self._finish: list[Callable[[Tx], Awaitable[None]]] = []

    async def one(self, sql: str, *args: Any) -> Any:
        """The first row of a query; None if there is none."""
        return await self.db.fetchrow(sql, *args)

    async def value(self, sql: str, *args: Any) -> Any:
        return await self.db.fetchval(sql, *args)

    async def all(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.db.fetch(sql, *args))

    async def run_sql(self, sql: str, *args: Any) -> int:
        """Execute a statement; its row count."""
        return _rowcount(await self.db.execute(sql, *args))

    async def many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            await self.db.executemany(sql, rows)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows deferred for ``sql`` to the run's end (to append to)."""
        return self._deferred.setdefault(sql, [])

    def at_end(self, finish: Callable[[Tx], Awaitable[None]]) -> None:
        """Call ``finish(tx)`` at the run's end (e.g. one insert for all its calls)."""
        self._finish.append(finish)

    async def end_run(self) -> None:
        """Run the finishers, then the deferred statements (in the order they were first
        used)."""
        for finish in self._finish:
            await finish(self)
        for sql, rows in self._deferred.items():
            await self.many(sql, rows)
        self._finish.clear()
        self._deferred.clear()
        self.run.clear()


class PostgresBase(StoreLimits, BatchWriter[Tx]):
    """Pools, lifecycle and the settings the feature modules share."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        batch_max: int = 2000,
        otk_max: int = 500,
        queue_max: int = 0,
        queue_bytes_max: int = 0,
        queue_share: int = 100,
        reactions_max: int = 0,
        link_bytes_max: int = 64 * 1024 * 1024,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._init_writer(batch_max)
        self._init_limits(otk_max=otk_max, queue_max=queue_max, queue_bytes_max=queue_bytes_max,
                          queue_share=queue_share, reactions_max=reactions_max,
                          link_bytes_max=link_bytes_max, clock=clock)
        self.dsn = dsn
        self.schema = schema  # a schema of its own (search_path), e.g. one per test
        self._wpool: asyncpg.Pool | None = None  # one connection: the writer's
        self._rpool: asyncpg.Pool | None = None
        self._last_prune = 0
        # Identities seen to exist; nothing is ever unregistered, so this only grows
        # (and stays true whichever node registered them).
        self._known: set[bytes] = set()

    # --- lifecycle ----------------------------------------------------------------------

    async def _pool(self, size: int, *, planned: str) -> asyncpg.Pool:
        settings = {"plan_cache_mode": planned}
        if self.schema:
            settings["search_path"] = self.schema
        pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=size,
                                         server_settings=settings, reset=_session_kept)
        assert pool is not None
        return pool

    async def open(self) -> None:
        """Connect, migrate; RuntimeError saying why (one line) if the database can't be
        used."""
        try:
            # The writer may keep generic plans (PostgreSQL's default): its hot
            # statements (messages.py, queues.py) are written so that any plan of them
            # is index lookups, however stale the tables' statistics — a queue table
            # swings from empty to hundreds of thousands of rows (live and just deleted)
            # within autovacuum's first minute — and tests/relay/test_postgres_plans.py
            # checks them with generic plans on grown tables. Planning each execution
            # instead cost ~0.1 ms a statement, five a commit: at 1,000 msg/s on three
            # nodes, send → delivered p50 8.3 → 6.0 ms and PostgreSQL's CPU -27 % with
            # generic plans allowed (docs/performance.md). The readers (every feature's
            # queries, not written that way) plan each statement for its parameters and
            # the table sizes of the moment: a generic plan cached while a table was
            # small could read all of it later (send → stored p50 2 → 22 ms once, when
            # the writer planned that way too).
            self._wpool = await self._pool(1, planned="auto")
            async with self._wpool.acquire() as conn:
                await migrate(conn, self.schema)
            self._rpool = await self._pool(_READERS, planned="force_custom_plan")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self._close_pools()
            raise RuntimeError(f"cannot use PostgreSQL at {storage_label(self.dsn)}:"
                               f" {exc}") from exc
        except BaseException:
            await self._close_pools()
            raise
        self._start_writer()

    async def _close_pools(self) -> None:
        for pool in (self._rpool, self._wpool):
            if pool is not None:
                await pool.close()
        self._rpool = self._wpool = None

    async def close(self) -> None:
        await self._stop_writer()
        await self._close_pools()

    # --- reads --------------------------------------------------------------------------

    def read_pool(self) -> asyncpg.Pool:
        """The read connections (for the blob bytes, blob_bytes.py)."""
        assert self._rpool is not None, "store is not open"
        return self._rpool

    async def _read(self, sql: str, *args: Any) -> list[Any]:
        assert self._rpool is not None, "store is not open"
        return list(await self._rpool.fetch(sql, *args))

    async def _read_value(self, sql: str, *args: Any) -> Any:
        assert self._rpool is not None, "store is not open"
        return await self._rpool.fetchval(sql, *args)

    # --- the writer's transaction -------------------------------------------------------

    async def _transaction(self, calls: list[Call], out: Committed) -> None:
        """The calls in order, each run of one write together, in one transaction. A
        rolled-back batch leaves nothing to put back: this backend keeps no counters."""
        assert self._wpool is not None, "store is not open"
        known = set(self._known)
        try:
            async with self._wpool.acquire() as conn:
                try:
                    async with conn.transaction():
                        await self._run_calls(Tx(conn, out), calls)
                except BaseException:
                    # The connection may be the broken part (cut by a server restart):
                    # the pool opens a new one for the next batch. (Terminating one the
                    # pool already dropped raises; the batch's own error is the news.)
                    with contextlib.suppress(asyncpg.InterfaceError):
                        conn.terminate()
                    raise
        except BaseException:
            self._known = known  # identities of the rolled-back registrations
            raise

    async def _run_calls(self, tx: Tx, calls: list[Call]) -> None:
        runs = [(fn, list(run)) for fn, run in itertools.groupby(_gathered(calls),
                                                                 key=attrgetter("fn"))]
        for n, (fn, tx.calls) in enumerate(runs, 1):
            tx.last_run = n == len(runs)
            for call in tx.calls:
                try:
                    result = await fn(self, tx, *call.args, **call.kwargs)
                except ProtocolError as exc:  # raised before it wrote anything
                    result = exc
                tx.out.results.append((call.fut, result))
            await tx.end_run()
        if tally := tx.queues.statement():  # the one statement locking counter rows
            await tx.run_sql(tally[0], *tally[1])
        await self._maybe_prune(tx)

    async def _maybe_prune(self, tx: Tx) -> None:
        """Forget the dedupe keys of sends older than the dedupe window (hourly)."""
        now = self._clock()
        if now - self._last_prune >= _PRUNE_EVERY_MS:
            self._last_prune = now
            await tx.run_sql("DELETE FROM sent WHERE at < $1", now - DEDUPE_WINDOW_MS)
            await tx.run_sql("DELETE FROM group_sent WHERE at < $1", now - DEDUPE_WINDOW_MS)


async def _session_kept(conn: asyncpg.Connection) -> None:
    """The pools' reset of a connection given back: nothing more than asyncpg's own
    (a transaction left open is rolled back). Its default also runs ``SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``: one more round trip per
    release — for the writer, after each commit and before its callers were answered.
    Nothing here leaves session state to reset: advisory locks are transaction-scoped, no
    LISTEN, no SET, cursors only inside transactions; the lead's session lock has a
    connection of its own (lead.py)."""


def _gathered(calls: list[Call]) -> list[Call]:
    """The batch with each stretch of only 1:1 acks and sends reordered to all its acks,
    then all its sends (each in call order), so that it is two runs — a handful of round
    trips — however they interleave. Under load a batch holds hundreds of both, arriving
    mixed: run by run that was a few round trips per call, each waiting for the server's
    backend to be scheduled, and the batch (and so every send's latency) grew with the
    load. They commute: an ack names a seq its client was pushed, so committed in an
    earlier batch; acking first only frees queue space a send in the same batch may use,
    as if the ack had arrived a moment sooner. Other writes keep their place, and
    nothing moves across one."""
    out: list[Call] = []
    stretch: list[Call] = []
    for call in calls:
        if call.fn.__name__ in _COMMUTING:
            stretch.append(call)
            continue
        out += sorted(stretch, key=_commuting_rank)  # stable: call order within each
        stretch.clear()
        out.append(call)
    out += sorted(stretch, key=_commuting_rank)
    return out


def _commuting_rank(call: Call) -> int:
    return _COMMUTING[call.fn.__name__]
