"""PostgreSQL: expiry, retention, the health probe and the counts for /metrics.

As in SQLite, every sweep deletes at most ``limit`` rows of each kind per transaction,
found through an index: short transactions that never scan a table. Two nodes sweeping
at once delete each row once (a deleted row is skipped).
"""

from __future__ import annotations

from typing import Any, Final

from ..records import RetentionSwept
from .base import PostgresBase, Tx, write

__all__ = ["Upkeep", "EXPIRED_MESSAGES"]

# What a deleted message takes from its queue's size (queues.py).
_RETURNING: Final = "RETURNING recipient, sender, length(body)"
# The queues' expiry sweep ($1 now, $2 the most rows), through the partial index on
# expires_at: no table scan (tests/relay/test_postgres_plans.py, with a generic plan).
EXPIRED_MESSAGES: Final = (
    "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
    f" WHERE expires_at > 0 AND expires_at <= $1 LIMIT $2) {_RETURNING}")


class Upkeep(PostgresBase):
    @write
    async def sweep(self, tx: Tx, now: int, limit: int) -> int:
        # Both through the partial indexes on expires_at: no table scan.
        n_messages = _taken(tx, await tx.all(EXPIRED_MESSAGES, now, limit))
        n_entries = await tx.run_sql(
            "DELETE FROM group_log WHERE gseq IN (SELECT gseq FROM group_log"
            " WHERE expires_at > 0 AND expires_at <= $1 LIMIT $2)", now, limit)
        # Link blobs: a few at most (a put deletes the expired ones too).
        await tx.run_sql("DELETE FROM link_slots WHERE expires_at <= $1", now)
        return max(n_messages, n_entries)

    @write
    async def retention_sweep(self, tx: Tx, queue_before: int, uploads_before: int,
                              limit: int, audit_before: int = 0) -> RetentionSwept:
        n_messages = n_entries = n_audit = 0
        if queue_before:
            # seq and gseq grow with `at`: the oldest rows are the first keys. Look at
            # no more than `limit` of them (a primary-key range), delete the old ones.
            n_messages = _taken(tx, await tx.all(
                "DELETE FROM messages WHERE seq IN (SELECT seq FROM (SELECT seq, at FROM"
                f" messages ORDER BY seq LIMIT $1) AS o WHERE at < $2) {_RETURNING}",
                limit, queue_before))
            n_entries = await tx.run_sql(
                "DELETE FROM group_log WHERE gseq IN (SELECT gseq FROM (SELECT gseq, at"
                " FROM group_log ORDER BY gseq LIMIT $1) AS o WHERE at < $2)",
                limit, queue_before)
        uploads = [(bytes(u), bytes(h)) for u, h in await tx.all(
            "DELETE FROM blob_uploads WHERE (user_id, hash) IN (SELECT user_id, hash FROM"
            " blob_uploads WHERE started_at < $1 LIMIT $2) RETURNING user_id, hash",
            uploads_before, limit)]
        if audit_before:  # ids grow with `at`, as for messages above
            n_audit = await tx.run_sql(
                "DELETE FROM audit WHERE id IN (SELECT id FROM (SELECT id, at FROM audit"
                " ORDER BY id LIMIT $1) AS o WHERE at < $2)", limit, audit_before)
        return RetentionSwept(n_messages, n_entries, uploads, n_audit)

    @write
    async def probe(self, tx: Tx) -> None:
        """A real write through the writer (schema_version, rewritten unchanged):
        resolves once it is committed, so the database takes writes."""
        await tx.run_sql("UPDATE schema_version SET version = version")

    async def stats(self) -> dict[str, int]:
        """Counts for /metrics (read at scrape time, not on the hot path)."""
        rows = await self._read(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM group_log),"
            " (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs),"
            " (SELECT count(*) FROM blob_uploads)")
        keys = ("messages", "group_entries", "blobs", "blob_bytes", "uploads")
        return dict(zip(keys, (int(v) for v in rows[0]), strict=True))


def _taken(tx: Tx, deleted: list[Any]) -> int:
    """Deleted messages off their queues' sizes; how many."""
    tx.queues.take(deleted)
    return len(deleted)
