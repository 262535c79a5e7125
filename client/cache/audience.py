"""Audience keys (followers-only posts): ours (author = our id) and those our followees
sent us, sealed; and whom we sent our current key."""

from __future__ import annotations

from .repo import KeyRow, Repo

__all__ = ["Audience"]


class Audience(Repo):
    async def put_key(self, author: bytes, key_id: int, key: bytes, now: int) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO audience_keys (author, key_id, key_sealed, created_at)"
            " VALUES (?, ?, ?, ?)", (author, key_id, self._seal(key), now))

    async def key(self, author: bytes, key_id: int) -> bytes | None:
        async with self._db.execute(
                "SELECT key_sealed FROM audience_keys WHERE author=? AND key_id=?",
                (author, key_id)) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def current_key(self, author: bytes) -> KeyRow | None:
        async with self._db.execute(
                "SELECT key_id, key_sealed FROM audience_keys WHERE author=?"
                " ORDER BY created_at DESC, rowid DESC LIMIT 1", (author,)) as cur:
            row = await cur.fetchone()
        return KeyRow(int(row[0]), self._open(row[1])) if row else None

    async def members(self) -> dict[bytes, int]:
        """Follower -> the id of the key we sent them."""
        async with self._db.execute("SELECT follower, key_id FROM audience_members") as cur:
            return {bytes(r[0]): int(r[1]) for r in await cur.fetchall()}

    async def set_members(self, members: dict[bytes, int]) -> None:
        await self._db.execute("DELETE FROM audience_members")
        await self._db.executemany("INSERT INTO audience_members VALUES (?, ?)",
                                   list(members.items()))
