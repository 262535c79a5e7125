"""PostgreSQL: blocks, the presence setting, who may send sealed messages, and contacts
(whose presence one may see)."""

from __future__ import annotations

from collections.abc import Sequence

from ..records import SealedAccess
from .base import PostgresBase, Tx, write

__all__ = ["Privacy"]


class Privacy(PostgresBase):
    async def is_blocked(self, user: bytes, sender: bytes) -> bool:
        return bool(await self._read_value(
            "SELECT EXISTS (SELECT 1 FROM blocks WHERE user_id = $1 AND blocked = $2)",
            user, sender))

    async def hide_presence(self, user: bytes) -> bool:
        return bool(await self._read_value(
            "SELECT hide_presence FROM privacy WHERE user_id = $1", user))

    async def sealed_access(self, user: bytes) -> SealedAccess | None:
        rows = await self._read(
            "SELECT verifier, anyone FROM sealed_access WHERE user_id = $1", user)
        return SealedAccess(bytes(rows[0][0]), bool(rows[0][1])) if rows else None

    async def contacts_of(self, users: Sequence[bytes], peer: bytes) -> set[bytes]:
        rows = await self._read(
            "SELECT c.user_id FROM contacts AS c WHERE c.peer = $1"
            " AND c.user_id = ANY($2::bytea[]) AND NOT EXISTS (SELECT 1 FROM blocks AS b"
            " WHERE b.user_id = c.user_id AND b.blocked = c.peer)", peer, list(users))
        return {bytes(u) for (u,) in rows}

    @write
    async def set_block(self, tx: Tx, user: bytes, blocked: bytes, on: bool) -> None:
        if on:
            await tx.run_sql("INSERT INTO blocks (user_id, blocked) VALUES ($1, $2)"
                             " ON CONFLICT DO NOTHING", user, blocked)
        else:
            await tx.run_sql("DELETE FROM blocks WHERE user_id = $1 AND blocked = $2",
                             user, blocked)

    @write
    async def set_privacy(self, tx: Tx, user: bytes, hide_presence: bool) -> None:
        await tx.run_sql("INSERT INTO privacy (user_id, hide_presence) VALUES ($1, $2)"
                         " ON CONFLICT (user_id) DO UPDATE SET"
                         " hide_presence = excluded.hide_presence", user, hide_presence)

    @write
    async def set_sealed_access(self, tx: Tx, user: bytes, verifier: bytes, anyone: bool
                                ) -> None:
        await tx.run_sql("INSERT INTO sealed_access (user_id, verifier, anyone)"
                         " VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET"
                         " verifier = excluded.verifier, anyone = excluded.anyone",
                         user, verifier, anyone)
