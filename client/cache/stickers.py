"""Sticker packs (keys and opened manifests sealed), their images (sealed), and which
messages are stickers (the Sticker content holds the pack key: sealed)."""

from __future__ import annotations

from typing import NamedTuple

from .repo import Repo, marks

__all__ = ["Stickers", "PackRow"]


class PackRow(NamedTuple):
    manifest: bytes  # blob id of the sealed manifest
    key: bytes  # the pack key
    name: str
    opened: bytes  # the opened manifest, MessagePack


class Stickers(Repo):
    async def put_pack(self, manifest: bytes, key: bytes, name: str, opened: bytes,
                       now: int, *, installed: bool) -> None:
        await self._db.execute(
            "INSERT INTO sticker_packs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(manifest) DO "
            "UPDATE SET installed=MAX(installed, excluded.installed)",
            (manifest, self._seal(key), name, self._seal(opened), int(installed), now))

    async def packs(self, *, installed_only: bool = True) -> list[PackRow]:
        """Packs, oldest first."""
        where = "WHERE installed=1 " if installed_only else ""
        async with self._db.execute(
            f"SELECT manifest, key_sealed, name, manifest_sealed FROM sticker_packs {where}"
            f"ORDER BY created_at, rowid") as cur:
            return [PackRow(r[0], self._open(r[1]), r[2], self._open(r[3]))
                    for r in await cur.fetchall()]

    async def pack(self, manifest: bytes) -> PackRow | None:
        """A pack we have opened."""
        async with self._db.execute(
            "SELECT manifest, key_sealed, name, manifest_sealed FROM sticker_packs "
            "WHERE manifest=?", (manifest,)) as cur:
            row = await cur.fetchone()
        return PackRow(row[0], self._open(row[1]), row[2], self._open(row[3])) if row else None

    async def put_image(self, blob: bytes, data: bytes) -> None:
        await self._db.execute("INSERT OR IGNORE INTO sticker_images VALUES (?, ?)",
                               (blob, self._seal(data)))

    async def image(self, blob: bytes) -> bytes | None:
        async with self._db.execute(
            "SELECT data_sealed FROM sticker_images WHERE hash=?", (blob,)) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def put_msg(self, conv: bytes, msg_id: bytes, content: bytes) -> None:
        await self._db.execute("INSERT OR IGNORE INTO sticker_msgs VALUES (?, ?, ?)",
                               (conv, msg_id, self._seal(content)))

    async def msgs(self, conv: bytes, ids: list[bytes]) -> dict[bytes, bytes]:
        """msg id -> Sticker content (MessagePack) of the messages in ``ids`` that are one."""
        if not ids:
            return {}
        async with self._db.execute(
            f"SELECT msg, ref_sealed FROM sticker_msgs WHERE conv=? AND msg IN ({marks(ids)})",
            (conv, *ids)) as cur:
            return {r[0]: self._open(r[1]) for r in await cur.fetchall()}

    async def drop_msg(self, conv: bytes, msg_id: bytes) -> None:
        """A deleted or disappeared sticker message: forget its pack key too."""
        await self._db.execute("DELETE FROM sticker_msgs WHERE conv=? AND msg=?", (conv, msg_id))
