"""The relay's periodic chores, and which node runs them.

A chore is one pass of work every ``interval`` seconds: the expiry sweep and retention
(``sweep_interval``), the story sweep (``story_sweep_interval``), the pruning of shared
rate-limit counters. On a cluster (several nodes on one PostgreSQL database) only the
node that leads (``Store.lead``, an advisory lock) runs them, so each runs once per
cluster, not once per node; every node asks every ``LEAD_CHECK`` seconds, so when the
leader dies another takes over within about that. One node (SQLite) always leads.

A chore that meets the store out of reach (PostgreSQL restarting) logs one line and
runs again at its next tick: chores stop only with the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tenchat.common.errors import ProtocolError

from .storage import storage_error

if TYPE_CHECKING:
    from .metrics import Metrics
    from .storage import Store

__all__ = ["Chore", "Chores", "LEAD_CHECK", "refused"]

log = logging.getLogger("tenchat.relay.chores")

LEAD_CHECK: Final = 2.0  # seconds between a node's looks at who leads


@dataclass(frozen=True, slots=True)
class Chore:
    name: str  # for logs and the tenchat_relay_chore_runs metric
    interval: float  # seconds between passes
    run: Callable[[], Awaitable[object]]


def refused(exc: Exception) -> ProtocolError | None:
    """The store refusing or out of reach (not a bug): the error to report, else None."""
    return exc if isinstance(exc, ProtocolError) else storage_error(exc)


class Chores:
    """Runs the chores while this node leads; ``leading`` is what /healthz reports."""

    def __init__(self, store: Store, metrics: Metrics | None = None,
                 lead_check: float = LEAD_CHECK) -> None:
        self.store = store
        self.metrics = metrics
        self.lead_check = lead_check
        self.leading = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, chores: list[Chore]) -> None:
        self._tasks.append(asyncio.create_task(self._lead_loop(), name="chores-lead"))
        for chore in chores:
            self._tasks.append(asyncio.create_task(self._loop(chore), name=chore.name))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def check_lead(self) -> bool:
        self.leading = await self.store.lead()
        if self.metrics is not None:
            self.metrics.leader.set(1 if self.leading else 0)
        return self.leading

    async def _lead_loop(self) -> None:
        while True:
            try:
                await self.check_lead()
            except Exception:
                log.exception("checking the cluster's lead failed")
            await asyncio.sleep(self.lead_check)

    async def _loop(self, chore: Chore) -> None:
        while True:
            await asyncio.sleep(chore.interval)
            if not self.leading:
                continue  # another node runs it
            try:
                await chore.run()
            except Exception as exc:
                problem = refused(exc)
                if problem is None:
                    log.exception("%s failed", chore.name)
                else:  # e.g. the database restarting: the next tick tries again
                    log.warning("%s postponed: %s", chore.name, problem.message)
                continue
            if self.metrics is not None:
                self.metrics.chore_runs.labels(chore.name).inc()
