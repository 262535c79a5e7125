"""Group commit, for any backend: a write is one function, declared once with ``@write``.

A backend's write is a method ``fn(self, tx, *args) -> result`` decorated with
:func:`write`. The decorator turns it into the interface's method ``fn(self, *args) ->
Future[result]``: calling that only queues a :class:`Call`. One writer task takes
everything queued (up to ``batch_max``), runs the calls in call order inside one
transaction (``tx``, the backend's transaction context), commits, and only then resolves
the callers' futures — so a ``stored`` answer always follows the commit that holds the
message. Then the commit listeners get what was stored (1:1 messages, group events).

Rules for a write function (the writer relies on them):

- Check first, then write: a ProtocolError it raises refuses only its own call (the
  caller gets it) and the batch commits, so it must not have written anything yet.
- Any other exception rolls the batch back; the calls are then retried one per
  transaction, so only the faulty one is answered with the error.
- It may keep state of its own across calls (counters, caches); a backend's
  ``_transaction`` puts back what a rolled-back batch may have left wrong.

mypy checks a decorated function against the interface's method (names, types, result),
so a backend cannot drift from :class:`~.interface.Store`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, Final, Generic, ParamSpec, Protocol, TypeVar

from tenchat.common.errors import ErrorCode, ProtocolError

from .errors import is_conflict, storage_error
from .records import BatchListener, GroupEntry, GroupListener, MembersChanged, StoredMessage

__all__ = ["write", "Call", "Committed", "BatchWriter"]

log = logging.getLogger("tenchat.relay.storage")

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C")  # a backend's transaction context
S = TypeVar("S", bound="_Submits")


@dataclass(slots=True)
class Call:
    """One queued write: the function, its arguments and the caller's future."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    fut: asyncio.Future[Any]


@dataclass(slots=True)
class Committed:
    """What one transaction produced: answers to hand out and what to announce."""

    results: list[tuple[asyncio.Future[Any], Any]] = field(default_factory=list)
    stored: list[StoredMessage] = field(default_factory=list)  # 1:1 messages, seq order
    group_events: list[MembersChanged | GroupEntry] = field(default_factory=list)


class _Submits(Protocol):
    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> asyncio.Future[Any]: ...


def write(fn: Callable[Concatenate[S, C, P], R]) -> Callable[Concatenate[S, P], asyncio.Future[R]]:
    """Declare a write: ``fn(self, tx, *args) -> R`` runs in the writer's transaction;
    the method it becomes, ``(self, *args) -> Future[R]``, queues it."""

    @functools.wraps(fn)
    def submit(self: S, /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[R]:
        return self._submit(fn, args, kwargs)

    return submit


_STOP: Final = object()


class BatchWriter(abc.ABC, Generic[C]):
    """The writer task and its queue; a backend provides :meth:`_transaction`."""

    batch_max: int = 2000
    # Batches handed to _transaction before the first of them has committed. 1: one at a
    # time. More only where the transactions still run one after another, in order, and
    # a batch's outcome is not needed to start the next (SQLite's writer process: the
    # next batch waits in its socket, so the writer never waits for the event loop).
    pipeline: int = 1
    on_commit: Callable[[list[StoredMessage]], None] | None = None
    on_group_commit: GroupListener | None = None
    on_batch: BatchListener | None = None
    last_write_error: str | None = None  # of the last write batch; None if it committed

    def _init_writer(self, batch_max: int) -> None:
        self.batch_max = batch_max
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def write_queue_depth(self) -> int:
        """Writes waiting for the writer (not counting the batch being committed)."""
        return self._queue.qsize()

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        if self._closing or self._writer is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "the relay is shutting down")
        # The writer's loop, not asyncio.get_running_loop(): on CPython 3.11 that is a
        # getpid() system call each time, ~9 % of the relay's GIL time at saturation.
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._queue.put_nowait(Call(fn, args, kwargs, fut))
        return fut

    def _start_writer(self) -> None:
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")

    async def _stop_writer(self) -> None:
        """Commit everything queued, resolve its futures, then end the writer task."""
        self._closing = True
        if self._writer is not None:
            self._queue.put_nowait(_STOP)
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    @abc.abstractmethod
    async def _transaction(self, calls: list[Call], out: Committed) -> None:
        """Run ``calls`` in one transaction and commit it, each call's result (or the
        ProtocolError it raised) in ``out.results``; if it fails, roll back, put back the
        backend's own state (counters, caches) and raise."""

    async def _write_loop(self) -> None:
        stopping = False
        slots = asyncio.Semaphore(self.pipeline)
        inflight: set[asyncio.Task[None]] = set()
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                break
            await slots.acquire()
            batch: list[Call] = [first]  # type: ignore[list-item]
            while len(batch) < self.batch_max and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            if self.pipeline == 1:
                try:
                    await self._commit_batch(batch)
                finally:
                    slots.release()
                continue
            task = asyncio.create_task(self._commit_batch(batch))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            task.add_done_callback(lambda _: slots.release())
        if inflight:
            await asyncio.gather(*inflight)

    async def _commit_batch(self, calls: list[Call]) -> None:
        out = Committed()
        started = time.perf_counter()
        try:
            await self._transaction(calls, out)
        except Exception as exc:
            refused = storage_error(exc)
            if (refused is None or is_conflict(exc)) and len(calls) > 1:
                # A bug in one write must not fail the others that shared its batch:
                # apply them one by one, so only the faulty one is answered `internal`.
                # Nor may a deadlock with another node's transaction (two batches taking
                # the same locks in different orders, one run of writes after another):
                # one write a transaction takes its locks in one order.
                if refused is None:
                    log.exception("write batch of %d failed; rolled back, retrying one by"
                                  " one", len(calls))
                else:
                    log.warning("write batch of %d met another node's transaction (%s);"
                                " rolled back, retrying one by one", len(calls), exc)
                self._batch_done(started, len(calls), False)
                for call in calls:
                    await self._commit_batch([call])
                return
            if refused is None:
                log.exception("write batch of %d failed; rolled back", len(calls))
            else:
                if str(refused) != self.last_write_error:  # once per outage, not per batch
                    log.error("write batch of %d refused (%s): %s; rolled back, and so are "
                              "the next ones until the store takes writes again",
                              len(calls), exc, refused.message)
                exc = refused
            self.last_write_error = str(exc)
            self._batch_done(started, len(calls), False)
            for call in calls:
                if not call.fut.done():
                    call.fut.set_exception(exc)
            return
        if self.last_write_error is not None:
            log.info("the store takes writes again")
        self.last_write_error = None
        self._batch_done(started, len(calls), True)
        for fut, value in out.results:
            if fut.done():  # the caller went away
                continue
            if isinstance(value, BaseException):
                fut.set_exception(value)
            else:
                fut.set_result(value)
        # Pushes go out two loop turns later: the futures' callbacks above run in the
        # next turn and queue the writers' answers (`stored`), which are written in the
        # turn after, ahead of the pushes — so a post's author isn't kept waiting behind
        # a fan-out to 1,000 online members. call_soon is FIFO: commit order is kept.
        loop = self._loop
        if out.stored and self.on_commit is not None:
            loop.call_soon(loop.call_soon, _notify, self.on_commit, out.stored)
        if out.group_events and self.on_group_commit is not None:
            loop.call_soon(loop.call_soon, _notify, self.on_group_commit, out.group_events)

    def _batch_done(self, started: float, ops: int, ok: bool) -> None:
        if self.on_batch is not None:
            try:
                self.on_batch(time.perf_counter() - started, ops, ok)
            except Exception:
                log.exception("batch listener failed")


def _notify(listener: Callable[[Any], None], items: Any) -> None:
    try:
        listener(items)
    except Exception:
        log.exception("commit listener failed")
