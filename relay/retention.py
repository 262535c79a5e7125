"""Retention: what the relay forgets on its own, in small batches.

- undelivered 1:1 messages and group log entries stored more than ``retention_days``
  ago (default 30; 0 keeps them until delivered);
- unfinished blob uploads started more than ``upload_expiry_hours`` ago (default 24):
  their row and their partial file;
- partial upload files with no upload row (left by a crash) older than that;
- audit rows written more than ``audit_retention_days`` ago (default 90; 0 keeps them).

Each pass is a series of write transactions of at most ``sweep_batch`` rows per table,
each walking the oldest primary keys, so no pass scans a table. The clock is a
parameter, so tests can move time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .blobs import BlobStore
    from .metrics import Metrics
    from .storage import Store

__all__ = ["Retention", "RetentionReport"]

log = logging.getLogger("tenchat.relay.retention")

DAY_MS: Final = 24 * 3600 * 1000
HOUR_MS: Final = 3600 * 1000
_MAX_ROUNDS: Final = 10_000  # transactions per pass at most; the next pass goes on


@dataclass(slots=True)
class RetentionReport:
    messages: int = 0
    group_entries: int = 0
    uploads: int = 0
    stray_partials: int = 0
    audit: int = 0

    @property
    def total(self) -> int:
        return (self.messages + self.group_entries + self.uploads + self.stray_partials
                + self.audit)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Retention:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore | None,
        *,
        retention_days: int,
        upload_expiry_hours: int,
        batch: int,
        clock: Callable[[], int] = _now_ms,
        metrics: Metrics | None = None,
        audit_retention_days: int = 0,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.retention_days = retention_days
        self.upload_expiry_hours = upload_expiry_hours
        self.audit_retention_days = audit_retention_days
        self.batch = batch
        self.clock = clock  # ms since the epoch
        self.metrics = metrics

    async def run_once(self) -> RetentionReport:
        """One pass: batches until nothing old is left (or _MAX_ROUNDS)."""
        now = self.clock()
        queue_before = now - self.retention_days * DAY_MS if self.retention_days else 0
        uploads_before = now - self.upload_expiry_hours * HOUR_MS
        audit_before = (now - self.audit_retention_days * DAY_MS
                        if self.audit_retention_days else 0)
        report = RetentionReport()
        for _ in range(_MAX_ROUNDS):
            swept = await self.store.retention_sweep(queue_before, uploads_before, self.batch,
                                                     audit_before)
            report.messages += swept.messages
            report.group_entries += swept.group_entries
            report.uploads += len(swept.uploads)
            report.audit += swept.audit
            if self.blobs is not None:
                for user, blob in swept.uploads:
                    await self.blobs.discard(user, blob)
            if max(swept.messages, swept.group_entries, len(swept.uploads),
                   swept.audit) < self.batch:
                break
        report.stray_partials = await self._stray_partials(uploads_before)
        if self.metrics is not None:
            for kind, n in (("messages", report.messages),
                            ("group_entries", report.group_entries),
                            ("uploads", report.uploads),
                            ("partial_files", report.stray_partials),
                            ("audit", report.audit)):
                if n:
                    self.metrics.retention_deleted.labels(kind).inc(n)
        return report

    async def _stray_partials(self, before_ms: int) -> int:
        """Partial files older than the upload expiry whose upload row is gone (a crash
        between the row's deletion and the file's). The tmp directory holds only
        unfinished uploads, so listing it is cheap."""
        if self.blobs is None:
            return 0
        removed = 0
        for user, blob in await self.blobs.stray_uploads(before_ms):
            if await self.store.blob_upload(user, blob) is None:
                await self.blobs.discard(user, blob)
                removed += 1
        return removed

    async def run_logged(self) -> RetentionReport:
        """One pass (:meth:`run_once`), logged if it deleted anything; the relay runs it
        every ``sweep_interval`` seconds on the cluster's leader (relay/chores.py)."""
        report = await self.run_once()
        if report.total:
            log.info(
                "retention deleted %d messages, %d group entries, %d uploads,"
                " %d stray partial files, %d audit rows", report.messages,
                report.group_entries, report.uploads, report.stray_partials, report.audit,
            )
        return report
