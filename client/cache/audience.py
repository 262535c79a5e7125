"""Audience keys (followers-only posts): ours (author = our id) and those our followees
sent us, sealed; and whom we sent our current key."""

from __future__ import annotations

from .repo import KeyTable

__all__ = ["Audience"]


class Audience(KeyTable):
    TABLE = "audience_keys"

    async def members(self) -> dict[bytes, int]:
        """Follower -> the id of the key we sent them."""
        async with self._db.execute("SELECT follower, key_id FROM audience_members") as cur:
            return {bytes(r[0]): int(r[1]) for r in await cur.fetchall()}

    async def set_members(self, members: dict[bytes, int]) -> None:
        await self._db.execute("DELETE FROM audience_members")
        await self._db.executemany("INSERT INTO audience_members VALUES (?, ?)",
                                   list(members.items()))
