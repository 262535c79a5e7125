"""PostgreSQL: media blob metadata — uploads in progress, stored blobs, the per-user quota.

The user's quota is checked under an advisory lock on the user (to the commit), so two
nodes beginning uploads of one user at once can't both pass it.
"""

from __future__ import annotations

from tenchat.common.errors import ErrorCode, ProtocolError

from ..records import BlobBegun
from .base import PostgresBase, Tx, lock_keys, write

__all__ = ["Blobs"]


class Blobs(PostgresBase):
    async def blob_size(self, blob: bytes) -> int | None:
        # An expired story's image is gone for readers before the sweep deletes it.
        size = await self._read_value(
            "SELECT size FROM blobs WHERE hash = $1 AND (expires_at = 0 OR expires_at > $2)",
            blob, self._clock())
        return None if size is None else int(size)

    async def blob_upload(self, user: bytes, blob: bytes) -> int | None:
        size = await self._read_value(
            "SELECT size FROM blob_uploads WHERE user_id = $1 AND hash = $2", user, blob)
        return None if size is None else int(size)

    @write
    async def blob_begin(self, tx: Tx, user: bytes, blob: bytes, size: int,
                         quota: int) -> BlobBegun:
        stored = await tx.value("SELECT size FROM blobs WHERE hash = $1", blob)
        if stored is not None:
            return BlobBegun(stored=True, new=False, size=stored)
        await tx.run_sql("SELECT pg_advisory_xact_lock($1)", lock_keys([user])[0])
        started = await tx.value(
            "SELECT size FROM blob_uploads WHERE user_id = $1 AND hash = $2", user, blob)
        if started is not None:
            if started != size:
                raise ProtocolError(ErrorCode.PROTOCOL,
                                    f"an upload of this blob with size {started} is in progress")
            return BlobBegun(stored=False, new=False, size=size)
        used = await tx.value(
            "SELECT coalesce((SELECT sum(size) FROM blobs WHERE owner = $1), 0)"
            " + coalesce((SELECT sum(size) FROM blob_uploads WHERE user_id = $1), 0)", user)
        if used + size > quota:
            raise ProtocolError(
                ErrorCode.QUOTA_EXCEEDED,
                f"{size} more bytes would pass the blob quota of {quota} ({used} used)")
        await tx.run_sql("INSERT INTO blob_uploads (user_id, hash, size, started_at)"
                         " VALUES ($1, $2, $3, $4)", user, blob, size, self._clock())
        return BlobBegun(stored=False, new=True, size=size)

    @write
    async def blob_commit(self, tx: Tx, user: bytes, blob: bytes, size: int) -> None:
        await tx.run_sql("INSERT INTO blobs (hash, owner, size, created_at)"
                         " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                         blob, user, size, self._clock())
        await tx.run_sql("DELETE FROM blob_uploads WHERE user_id = $1 AND hash = $2",
                         user, blob)

    @write
    async def blob_abort(self, tx: Tx, user: bytes, blob: bytes) -> None:
        await tx.run_sql("DELETE FROM blob_uploads WHERE user_id = $1 AND hash = $2",
                         user, blob)
