"""The relay's Prometheus metrics: one :class:`Metrics` per server, on its own registry.

The hot path only touches prepared children (a dict look-up and an ``inc()``); the
gauges that need a count (queued messages, blobs) are read when /metrics is scraped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tenchat.common.errors import ErrorCode
from tenchat.common.frames import Request

if TYPE_CHECKING:
    from .storage import Store

__all__ = ["Metrics", "CONTENT_TYPE"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# Commit latencies from 0.5 ms (a batch on a fast disk) to 2.5 s (a stalled fsync).
_COMMIT_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
_BATCH_BUCKETS: Final = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000)


class Metrics:
    """Counters, gauges and histograms of one relay; ``render()`` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.connections = Gauge(
            "tenchat_relay_connections", "Open WebSocket connections.", registry=registry
        )
        self.connections_total = Counter(
            "tenchat_relay_connections_accepted", "WebSocket connections accepted.",
            registry=registry,
        )
        frames = Counter(
            "tenchat_relay_frames", "Request frames received, by type ('invalid': undecodable).",
            ["type"], registry=registry,
        )
        # Prepared children: the per-frame cost is one dict look-up and one inc().
        self._frames: dict[type[msgspec.Struct], Callable[[], None]] = {
            cls: frames.labels(cls.__struct_config__.tag).inc  # type: ignore[union-attr]
            for cls in Request.__args__  # type: ignore[attr-defined]
        }
        self.invalid_frame = frames.labels("invalid").inc
        errors = Counter(
            "tenchat_relay_errors", "Error frames sent, by code.", ["code"], registry=registry
        )
        self._errors = {code.value: errors.labels(code.value) for code in ErrorCode}
        self._errors_family = errors
        self.commit_seconds = Histogram(
            "tenchat_relay_store_commit_seconds",
            "Time of one store write transaction (group commit), fsync included.",
            buckets=_COMMIT_BUCKETS, registry=registry,
        )
        self.batch_ops = Histogram(
            "tenchat_relay_store_batch_ops", "Writes per group commit.",
            buckets=_BATCH_BUCKETS, registry=registry,
        )
        self.commit_failures = Counter(
            "tenchat_relay_store_commit_failures", "Write transactions rolled back.",
            registry=registry,
        )
        self.write_queue = Gauge(
            "tenchat_relay_store_write_queue", "Writes waiting for the store's writer.",
            registry=registry,
        )
        self.deferred = Gauge(
            "tenchat_relay_deferred_answers",
            "Answers waiting for a commit, over all connections.", registry=registry,
        )
        self.queued = Gauge(
            "tenchat_relay_queued_messages", "Undelivered 1:1 messages in the store.",
            registry=registry,
        )
        self.group_entries = Gauge(
            "tenchat_relay_group_log_entries", "Group log entries in the store.",
            registry=registry,
        )
        self.blobs = Gauge("tenchat_relay_blobs", "Stored media blobs.", registry=registry)
        self.blob_bytes = Gauge(
            "tenchat_relay_blob_bytes", "Bytes of stored media blobs.", registry=registry
        )
        self.uploads = Gauge(
            "tenchat_relay_blob_uploads", "Unfinished blob uploads.", registry=registry
        )
        self.chore_runs = Counter(
            "tenchat_relay_chore_runs",
            "Passes of the periodic chores this node ran (only the cluster's leader runs "
            "them), by chore.", ["chore"], registry=registry,
        )
        self.bus_rereads = Gauge(
            "tenchat_relay_bus_rereads",
            "Times this node's connections re-read their queues from the store since it "
            "started, because bus traffic may have been lost (the bus reconnected, this "
            "node fell behind, or a node died unannounced).", registry=registry,
        )
        self.leader = Gauge(
            "tenchat_relay_leader",
            "1 if this node runs the cluster's chores (sweeps, retention), else 0.",
            registry=registry,
        )
        self.retention_deleted = Counter(
            "tenchat_relay_retention_deleted",
            "Rows deleted by the retention sweep, by kind.", ["kind"], registry=registry,
        )

    def frame(self, frame: msgspec.Struct) -> None:
        inc = self._frames.get(type(frame))
        if inc is not None:
            inc()

    def error(self, code: str) -> None:
        child = self._errors.get(code)
        if child is None:  # a code added without a metric: still counted
            child = self._errors[code] = self._errors_family.labels(code)
        child.inc()

    def batch(self, seconds: float, ops: int, ok: bool) -> None:
        """The store's BatchListener."""
        if ok:
            self.commit_seconds.observe(seconds)
            self.batch_ops.observe(ops)
        else:
            self.commit_failures.inc()

    async def render(self, store: Store, deferred: int) -> bytes:
        """The /metrics body, with the scrape-time gauges refreshed."""
        stats = await store.stats()
        self.queued.set(stats["messages"])
        self.group_entries.set(stats["group_entries"])
        self.blobs.set(stats["blobs"])
        self.blob_bytes.set(stats["blob_bytes"])
        self.uploads.set(stats["uploads"])
        self.write_queue.set(store.write_queue_depth)
        self.deferred.set(deferred)
        return generate_latest(self.registry)
