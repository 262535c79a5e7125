"""SQLite: expiry, retention, the health probe and the counts for /metrics.

Every sweep deletes at most ``limit`` rows of each kind per transaction, found through
an index (expires_at, or the primary key's order for age): short transactions that
never scan a table, so the hot path waits little behind them.
"""

from __future__ import annotations

from ..records import RetentionSwept
from ..writer import write
from .base import SQLiteBase, Tx

__all__ = ["Upkeep"]


class Upkeep(SQLiteBase):
    @write
    def sweep(self, tx: Tx, now: int, limit: int) -> int:
        # Both through the partial indexes on expires_at: no table scan.
        n_messages = tx.run_sql(
            "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
            " WHERE expires_at > 0 AND expires_at <= ? LIMIT ?)", (now, limit))
        if n_messages:
            self._forget_queue_sizes()
        n_entries = tx.run_sql(
            "DELETE FROM group_log WHERE gseq IN (SELECT gseq FROM group_log"
            " WHERE expires_at > 0 AND expires_at <= ? LIMIT ?)", (now, limit))
        # Link blobs: a few at most (a put deletes the expired ones too).
        tx.run_sql("DELETE FROM link_slots WHERE expires_at <= ?", (now,))
        return max(n_messages, n_entries)

    @write
    def retention_sweep(self, tx: Tx, queue_before: int, uploads_before: int, limit: int,
                        audit_before: int = 0) -> RetentionSwept:
        n_messages = n_entries = 0
        if queue_before:
            # seq and gseq grow with `at`: the oldest rows are the first keys. Look at
            # no more than `limit` of them (a primary-key range), delete the old ones.
            n_messages = tx.run_sql(
                "DELETE FROM messages WHERE seq IN (SELECT seq FROM (SELECT seq, at FROM"
                " messages ORDER BY seq LIMIT ?) WHERE at < ?)", (limit, queue_before))
            if n_messages:
                self._forget_queue_sizes()
            n_entries = tx.run_sql(
                "DELETE FROM group_log WHERE gseq IN (SELECT gseq FROM (SELECT gseq, at"
                " FROM group_log ORDER BY gseq LIMIT ?) WHERE at < ?)", (limit, queue_before))
        # Uploads in progress are few (one row per unfinished upload), so this reads a
        # small table.
        uploads = [(bytes(u), bytes(h)) for u, h in tx.all(
            "SELECT user, hash FROM blob_uploads WHERE started_at < ? LIMIT ?",
            (uploads_before, limit))]
        tx.db.executemany("DELETE FROM blob_uploads WHERE user = ? AND hash = ?", uploads)
        n_audit = 0
        if audit_before:  # ids grow with `at`, as for messages above
            n_audit = tx.run_sql(
                "DELETE FROM audit WHERE id IN (SELECT id FROM (SELECT id, at FROM audit"
                " ORDER BY id LIMIT ?) WHERE at < ?)", (limit, audit_before))
        return RetentionSwept(n_messages, n_entries, uploads, n_audit)

    @write
    def probe(self, tx: Tx) -> None:
        """A real write through the writer (the header's user_version, rewritten
        unchanged): resolves once it is committed, so the store is writable."""
        version = int(tx.one("PRAGMA user_version")[0])
        tx.db.execute(f"PRAGMA user_version={version}")

    async def stats(self) -> dict[str, int]:
        """Counts for /metrics (read at scrape time, not on the hot path)."""
        rows = await self._read(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM group_log),"
            " (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs),"
            " (SELECT count(*) FROM blob_uploads)"
        )
        keys = ("messages", "group_entries", "blobs", "blob_bytes", "uploads")
        return dict(zip(keys, rows[0], strict=True))
