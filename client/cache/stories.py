"""Stories: close-friends keys (ours and those sent to us, sealed), our close-friends
list, verified story records (still sealed under their audience key) until they expire,
and view receipts on ours."""

from __future__ import annotations

from typing import NamedTuple

from .repo import KeyTable

__all__ = ["Stories", "StoryRow", "StoryView"]


class StoryRow(NamedTuple):
    id: bytes
    author: bytes
    record: bytes
    seen: bool


class StoryView(NamedTuple):
    viewer: bytes
    at: int


class Stories(KeyTable):
    TABLE = "story_keys"

    async def close_friends(self) -> dict[bytes, int | None]:
        """Our close friends, each with the id of the key they were sent (None: none)."""
        async with self._db.execute("SELECT user, key_id FROM close_friends") as cur:
            return {bytes(r[0]): r[1] for r in await cur.fetchall()}

    async def set_close_friend(self, user: bytes, on: bool) -> bool:
        """Add (or remove) a close friend; True if the list changed."""
        if on:
            cur = await self._db.execute(
                "INSERT OR IGNORE INTO close_friends (user, key_id) VALUES (?, NULL)", (user,))
        else:
            cur = await self._db.execute("DELETE FROM close_friends WHERE user=?", (user,))
        return cur.rowcount > 0

    async def set_close_friend_keys(self, members: dict[bytes, int | None]) -> None:
        await self._db.executemany("UPDATE close_friends SET key_id=? WHERE user=?",
                                   [(k, u) for u, k in members.items()])

    async def put(self, story: bytes, author: bytes, posted_at: int, expires_at: int,
                  record: bytes, *, seen: bool = False) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO stories (id, author, posted_at, expires_at, record, seen)"
            " VALUES (?, ?, ?, ?, ?, ?)", (story, author, posted_at, expires_at, record,
                                           int(seen)))

    async def drop_expired(self, now: int) -> int:
        """Delete stories (and their view receipts) that expired by ``now``; how many."""
        async with self._db.execute(
                "DELETE FROM stories WHERE expires_at <= ? RETURNING id", (now,)) as cur:
            gone = [(r[0],) for r in await cur.fetchall()]
        if gone:
            await self._db.executemany("DELETE FROM story_views WHERE story=?", gone)
        return len(gone)

    async def live(self, now: int) -> list[StoryRow]:
        """Every unexpired story, newest first."""
        async with self._db.execute(
                "SELECT id, author, record, seen FROM stories WHERE expires_at > ?"
                " ORDER BY posted_at DESC, id", (now,)) as cur:
            return [StoryRow(bytes(r[0]), bytes(r[1]), bytes(r[2]), bool(r[3]))
                    for r in await cur.fetchall()]

    async def get(self, story: bytes, now: int) -> StoryRow | None:
        """An unexpired story."""
        async with self._db.execute(
                "SELECT id, author, record, seen FROM stories WHERE id=? AND expires_at > ?",
                (story, now)) as cur:
            row = await cur.fetchone()
        return StoryRow(bytes(row[0]), bytes(row[1]), bytes(row[2]), bool(row[3])) if row else None

    async def ids_like(self, prefix: str, now: int) -> list[bytes]:
        """Unexpired stories whose id starts with the hex ``prefix``."""
        async with self._db.execute(
                "SELECT id FROM stories WHERE expires_at > ? AND hex(id) LIKE ?",
                (now, prefix.upper() + "%")) as cur:
            return [bytes(r[0]) for r in await cur.fetchall()]

    async def mark_seen(self, story: bytes) -> None:
        await self._db.execute("UPDATE stories SET seen=1 WHERE id=?", (story,))

    async def add_view(self, story: bytes, viewer: bytes, at: int, me: bytes) -> bool:
        """Record a view receipt, if ``story`` is one of ours (``me``); True if new."""
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO story_views (story, viewer, at) SELECT ?, ?, ?"
            " WHERE EXISTS (SELECT 1 FROM stories WHERE id=? AND author=?)",
            (story, viewer, at, story, me))
        return cur.rowcount > 0

    async def views(self, story: bytes) -> list[StoryView]:
        async with self._db.execute(
                "SELECT viewer, at FROM story_views WHERE story=? ORDER BY at, viewer",
                (story,)) as cur:
            return [StoryView(bytes(r[0]), int(r[1])) for r in await cur.fetchall()]
