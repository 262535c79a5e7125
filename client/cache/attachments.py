"""Attachments' MediaRefs (each holds its file's key: stored sealed)."""

from __future__ import annotations

from typing import NamedTuple

from .repo import Repo, marks

__all__ = ["Attachments", "AttachmentRow"]


class AttachmentRow(NamedTuple):
    conv: bytes
    msg: bytes
    ref: bytes  # MediaRef, MessagePack


class Attachments(Repo):
    async def put(self, conv: bytes, msg_id: bytes, ref: bytes) -> None:
        """``ref`` is a MediaRef, MessagePack: stored sealed (it holds the file's key)."""
        await self._db.execute(
            "INSERT OR IGNORE INTO attachments (conv, msg, ref_sealed) VALUES (?, ?, ?)",
            (conv, msg_id, self._seal(ref)))

    async def of(self, conv: bytes, ids: list[bytes]) -> dict[bytes, bytes]:
        """msg id -> MediaRef (MessagePack) of the messages in ``ids`` that have one."""
        out: dict[bytes, bytes] = {}
        for i in range(0, len(ids), 500):  # under SQLite's limit of bound parameters
            chunk = ids[i : i + 500]
            async with self._db.execute(
                f"SELECT msg, ref_sealed FROM attachments WHERE conv=? "
                f"AND msg IN ({marks(chunk)})", (conv, *chunk)) as cur:
                out.update((r[0], self._open(r[1])) for r in await cur.fetchall())
        return out

    async def find(self, prefix: str) -> list[AttachmentRow]:
        """Every attachment whose message id starts with the hex ``prefix``."""
        async with self._db.execute(
            "SELECT conv, msg, ref_sealed FROM attachments WHERE hex(msg) LIKE ?",
            (prefix.upper() + "%",)) as cur:
            return [AttachmentRow(r[0], r[1], self._open(r[2])) for r in await cur.fetchall()]

    async def drop(self, conv: bytes, msg_id: bytes) -> None:
        await self._db.execute("DELETE FROM attachments WHERE conv=? AND msg=?", (conv, msg_id))
