"""The cache's key-value table (``meta``): account settings, cursors, flags."""

from __future__ import annotations

import sqlite3

from .repo import Repo

__all__ = ["Settings", "get_meta"]


def get_meta(conn: sqlite3.Connection, key: str) -> bytes | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


class Settings(Repo):
    async def get(self, key: str) -> bytes | None:
        return await self._db.run(get_meta, self._db.conn, key)

    async def set(self, key: str, value: bytes | str | int) -> None:
        await self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
