"""Our prekeys (signed and one-time), private halves sealed with the storage key."""

from __future__ import annotations

from typing import NamedTuple

from .repo import Repo

__all__ = ["Prekeys", "PrekeyAge", "PrekeyPublic"]


class PrekeyAge(NamedTuple):
    key_id: int
    created_at: int


class PrekeyPublic(NamedTuple):
    key_id: int
    public: bytes


class Prekeys(Repo):
    async def put(self, kind: str, key_id: int, public: bytes, private: bytes,
                  now: int) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO prekeys VALUES (?, ?, ?, ?, ?)",
            (kind, key_id, public, self._seal(private), now),
        )

    async def private(self, kind: str, key_id: int) -> bytes | None:
        async with self._db.execute(
            "SELECT private_sealed FROM prekeys WHERE kind=? AND key_id=?", (kind, key_id)
        ) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def privates(self, kind: str) -> dict[int, bytes]:
        return await self._cache.call(lambda tx: tx.prekey_privates(kind))

    async def delete(self, kind: str, key_id: int) -> None:
        await self._db.execute("DELETE FROM prekeys WHERE kind=? AND key_id=?", (kind, key_id))

    async def delete_many(self, kind: str, key_ids: list[int]) -> None:
        await self._db.executemany("DELETE FROM prekeys WHERE kind=? AND key_id=?",
                                   [(kind, k) for k in key_ids])

    async def ages(self, kind: str) -> list[PrekeyAge]:
        """Every prekey of ``kind`` held, lowest id first."""
        async with self._db.execute(
            "SELECT key_id, created_at FROM prekeys WHERE kind=? ORDER BY key_id", (kind,)
        ) as cur:
            return [PrekeyAge(int(r[0]), int(r[1])) for r in await cur.fetchall()]

    async def count(self, kind: str) -> int:
        async with self._db.execute("SELECT count(*) FROM prekeys WHERE kind=?", (kind,)) as cur:
            (value,) = await cur.fetchone()
        return int(value)

    async def publics(self, kind: str, above: int) -> list[PrekeyPublic]:
        """The prekeys of ``kind`` with an id above ``above``."""
        async with self._db.execute(
            "SELECT key_id, public FROM prekeys WHERE kind=? AND key_id>? ORDER BY key_id",
            (kind, above),
        ) as cur:
            return [PrekeyPublic(int(r[0]), bytes(r[1])) for r in await cur.fetchall()]

    async def max_id(self, kind: str) -> int:
        async with self._db.execute(
            "SELECT COALESCE(MAX(key_id), 0) FROM prekeys WHERE kind=?", (kind,)
        ) as cur:
            (value,) = await cur.fetchone()
        return int(value)
