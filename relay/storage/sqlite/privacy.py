"""SQLite: blocks, the presence setting, who may send sealed messages, and contacts
(whose presence one may see)."""

from __future__ import annotations

from collections.abc import Sequence

from ..records import SealedAccess
from ..writer import write
from .base import SQLiteBase, Tx, chunks, marks

__all__ = ["Privacy"]


class Privacy(SQLiteBase):
    async def is_blocked(self, user: bytes, sender: bytes) -> bool:
        if user not in self._blockers:
            return False
        rows = await self._read(
            "SELECT 1 FROM blocks WHERE user = ? AND blocked = ?", (user, sender)
        )
        return bool(rows)

    async def hide_presence(self, user: bytes) -> bool:
        rows = await self._read("SELECT hide_presence FROM privacy WHERE user = ?", (user,))
        return bool(rows and rows[0][0])

    async def sealed_access(self, user: bytes) -> SealedAccess | None:
        rows = await self._read(
            "SELECT verifier, anyone FROM sealed_access WHERE user = ?", (user,))
        return SealedAccess(bytes(rows[0][0]), bool(rows[0][1])) if rows else None

    async def contacts_of(self, users: Sequence[bytes], peer: bytes) -> set[bytes]:
        found: set[bytes] = set()
        for chunk in chunks(list(users), 400):
            rows = await self._read(
                f"SELECT c.user FROM contacts AS c WHERE c.peer = ? AND c.user IN"
                f" ({marks(len(chunk))}) AND NOT EXISTS (SELECT 1 FROM blocks AS b"
                " WHERE b.user = c.user AND b.blocked = c.peer)",
                [peer, *chunk])
            found.update(bytes(u) for (u,) in rows)
        return found

    @write
    def set_block(self, tx: Tx, user: bytes, blocked: bytes, on: bool) -> None:
        if on:
            tx.run_sql("INSERT OR IGNORE INTO blocks (user, blocked) VALUES (?, ?)",
                       (user, blocked))
            self._blockers.add(user)  # an over-estimate if rolled back: harmless
            if self._blockers_added is not None:  # the writer process tells the relay
                self._blockers_added.append(user)
        else:
            tx.run_sql("DELETE FROM blocks WHERE user = ? AND blocked = ?", (user, blocked))

    @write
    def set_privacy(self, tx: Tx, user: bytes, hide_presence: bool) -> None:
        tx.run_sql("INSERT OR REPLACE INTO privacy (user, hide_presence) VALUES (?, ?)",
                   (user, int(hide_presence)))

    @write
    def set_sealed_access(self, tx: Tx, user: bytes, verifier: bytes, anyone: bool) -> None:
        tx.run_sql("INSERT OR REPLACE INTO sealed_access (user, verifier, anyone)"
                   " VALUES (?, ?, ?)", (user, verifier, int(anyone)))
