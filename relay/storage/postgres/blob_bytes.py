"""PostgreSQL: the bytes of blobs, in the database, so every node serves every blob.

``bytea`` in chunks, not large objects: a chunk is one frame's data (at most
``max_frame``, 1 MiB by default), a row of ``blob_parts`` while the upload is in
progress and of ``blob_data`` once verified. Plain rows are deleted with the rest
(large objects would need ``lo_unlink`` and leak when one is missed), replicate and
``pg_dump`` like every table, and a ranged read fetches only the chunks it overlaps
(primary key (hash, pos)). The chunks are stored EXTERNAL: out of line, never
compressed (ciphertext does not compress; trying costs CPU).

Appends and reads use the store's read pool directly (not the writer's batches): a
blob's row (relay/storage: ``blob_commit``) is what makes it stored, and it is written
through the writer only after :meth:`publish` has moved the chunks into ``blob_data``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg

from tenchat.common.crypto.media import new_hasher

from ...blobs import UploadLocks

__all__ = ["DatabaseBlobs"]


class DatabaseBlobs(UploadLocks):
    """:class:`relay.blobs.BlobStore` in PostgreSQL (``blob_parts``, ``blob_data``)."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        super().__init__()
        self._pool_of = pool  # the store's read pool, once it is open

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._pool_of()

    def open(self) -> None:
        pass  # the tables are the schema's

    async def received(self, user: bytes, blob: bytes) -> int:
        return int(await self._pool.fetchval(
            "SELECT coalesce(sum(length(data)), 0) FROM blob_parts"
            " WHERE user_id = $1 AND hash = $2", user, blob))

    async def discard(self, user: bytes, blob: bytes) -> None:
        await self._pool.execute("DELETE FROM blob_parts WHERE user_id = $1 AND hash = $2",
                                 user, blob)

    async def append(self, user: bytes, blob: bytes, data: bytes) -> int:
        # The chunk goes at the upload's end, found in the same statement.
        end = await self._pool.fetchval(
            "INSERT INTO blob_parts (user_id, hash, pos, data, at)"
            " SELECT $1, $2, coalesce(sum(length(data)), 0), $3, $4 FROM blob_parts"
            " WHERE user_id = $1 AND hash = $2 RETURNING pos + length(data)",
            user, blob, data, time.time_ns() // 1_000_000)
        return int(end)

    async def publish(self, user: bytes, blob: bytes) -> bool:
        hasher = new_hasher()
        async with self._pool.acquire() as conn, conn.transaction():
            async for (chunk,) in conn.cursor(
                    "SELECT data FROM blob_parts WHERE user_id = $1 AND hash = $2"
                    " ORDER BY pos", user, blob):
                hasher.update(chunk)
            if hasher.digest() == blob:
                # Content-addressed: an identical copy stored by someone else is kept.
                await conn.execute(
                    "INSERT INTO blob_data (hash, pos, data) SELECT hash, pos, data"
                    " FROM blob_parts WHERE user_id = $1 AND hash = $2"
                    " ON CONFLICT DO NOTHING", user, blob)
                ok = True
            else:
                ok = False
            await conn.execute("DELETE FROM blob_parts WHERE user_id = $1 AND hash = $2",
                               user, blob)
        return ok

    async def read(self, blob: bytes, offset: int, length: int) -> bytes:
        rows = await self._pool.fetch(
            "SELECT pos, data FROM blob_data WHERE hash = $1 AND pos < $2"
            " AND pos + length(data) > $3 ORDER BY pos", blob, offset + max(length, 1), offset)
        if not rows:
            if await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM blob_data"
                                         " WHERE hash = $1)", blob):
                return b""  # a read at the end
            raise FileNotFoundError(f"no bytes of blob {blob.hex()}")
        data = b"".join(bytes(chunk) for _, chunk in rows)
        start = offset - rows[0][0]
        return data[start : start + length]

    async def remove(self, blob: bytes) -> None:
        await self._pool.execute("DELETE FROM blob_data WHERE hash = $1", blob)

    async def stray_uploads(self, before_ms: int) -> list[tuple[bytes, bytes]]:
        rows = await self._pool.fetch(
            "SELECT user_id, hash FROM blob_parts GROUP BY user_id, hash"
            " HAVING max(at) < $1", before_ms)
        return [(bytes(u), bytes(h)) for u, h in rows]
