"""What every repository of the cache shares: the one connection (so every repository
writes in the same transaction) and the storage key's seal."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..db import Database
    from .store import Cache

__all__ = ["Repo", "KeyTable", "KeyRow", "marks"]


class KeyRow(NamedTuple):
    """A symmetric key held by id (audience keys, close-friends story keys)."""

    key_id: int
    key: bytes


def marks(values: list[bytes] | list[int]) -> str:
    """``?,?,…`` for an ``IN (…)`` over ``values``."""
    return ",".join("?" * len(values))


class Repo:
    """One feature's tables. Methods do not commit: writes belong to the open
    ``cache.transaction()``."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    @property
    def _db(self) -> Database:
        return self._cache._db

    def _seal(self, data: bytes) -> bytes:
        return self._cache._seal(data)

    def _open(self, data: bytes) -> bytes:
        return self._cache._open(data)


class KeyTable(Repo):
    """Symmetric keys by (author, key id), sealed (audience keys, story keys): the same
    three queries over the table a subclass names."""

    TABLE: str  # (author, key_id, key_sealed, created_at)

    async def put_key(self, author: bytes, key_id: int, key: bytes, now: int) -> None:
        await self._db.execute(
            f"INSERT OR REPLACE INTO {self.TABLE} (author, key_id, key_sealed, created_at)"
            " VALUES (?, ?, ?, ?)", (author, key_id, self._seal(key), now))

    async def key(self, author: bytes, key_id: int) -> bytes | None:
        async with self._db.execute(
                f"SELECT key_sealed FROM {self.TABLE} WHERE author=? AND key_id=?",
                (author, key_id)) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def current_key(self, author: bytes) -> KeyRow | None:
        """``author``'s newest key."""
        async with self._db.execute(
                f"SELECT key_id, key_sealed FROM {self.TABLE} WHERE author=?"
                " ORDER BY created_at DESC, rowid DESC LIMIT 1", (author,)) as cur:
            row = await cur.fetchone()
        return KeyRow(int(row[0]), self._open(row[1])) if row else None
