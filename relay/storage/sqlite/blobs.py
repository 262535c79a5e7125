"""SQLite: media blob metadata — uploads in progress, stored blobs, the per-user quota.

The bytes are files under DATA/blobs (relay/blobs.py); only what they are and whose
is here. A blob's row is written once its file is in place and verified.
"""

from __future__ import annotations

from tenchat.common.errors import ErrorCode, ProtocolError

from ..records import BlobBegun
from ..writer import write
from .base import SQLiteBase, Tx

__all__ = ["Blobs"]


class Blobs(SQLiteBase):
    async def blob_size(self, blob: bytes) -> int | None:
        # An expired story's image is gone for readers before the sweep deletes it.
        rows = await self._read(
            "SELECT size FROM blobs WHERE hash = ? AND (expires_at = 0 OR expires_at > ?)",
            (blob, self._clock()))
        return int(rows[0][0]) if rows else None

    async def blob_upload(self, user: bytes, blob: bytes) -> int | None:
        rows = await self._read(
            "SELECT size FROM blob_uploads WHERE user = ? AND hash = ?", (user, blob)
        )
        return int(rows[0][0]) if rows else None

    @write
    def blob_begin(self, tx: Tx, user: bytes, blob: bytes, size: int, quota: int) -> BlobBegun:
        row = tx.one("SELECT size FROM blobs WHERE hash = ?", (blob,))
        if row:
            return BlobBegun(stored=True, new=False, size=row[0])
        row = tx.one("SELECT size FROM blob_uploads WHERE user = ? AND hash = ?", (user, blob))
        if row:
            if row[0] != size:
                raise ProtocolError(ErrorCode.PROTOCOL,
                                    f"an upload of this blob with size {row[0]} is in progress")
            return BlobBegun(stored=False, new=False, size=size)
        used = tx.one(
            "SELECT coalesce((SELECT sum(size) FROM blobs WHERE owner = ?), 0)"
            " + coalesce((SELECT sum(size) FROM blob_uploads WHERE user = ?), 0)",
            (user, user))[0]
        if used + size > quota:
            raise ProtocolError(
                ErrorCode.QUOTA_EXCEEDED,
                f"{size} more bytes would pass the blob quota of {quota} ({used} used)")
        tx.run_sql("INSERT INTO blob_uploads (user, hash, size, started_at) VALUES (?, ?, ?, ?)",
                   (user, blob, size, self._clock()))
        return BlobBegun(stored=False, new=True, size=size)

    @write
    def blob_commit(self, tx: Tx, user: bytes, blob: bytes, size: int) -> None:
        tx.run_sql(
            "INSERT OR IGNORE INTO blobs (hash, owner, size, created_at) VALUES (?, ?, ?, ?)",
            (blob, user, size, self._clock()))
        tx.run_sql("DELETE FROM blob_uploads WHERE user = ? AND hash = ?", (user, blob))

    @write
    def blob_abort(self, tx: Tx, user: bytes, blob: bytes) -> None:
        tx.run_sql("DELETE FROM blob_uploads WHERE user = ? AND hash = ?", (user, blob))
