"""SQLite: verified wallet bindings (common.wallets), one per address."""

from __future__ import annotations

from tenchat.common.errors import ErrorCode, ProtocolError

from ..writer import write
from .base import SQLiteBase, Tx

__all__ = ["Wallets"]


class Wallets(SQLiteBase):
    async def wallet_links(self, user: bytes) -> list[bytes]:
        rows = await self._read(
            "SELECT record FROM wallet_links WHERE user = ? ORDER BY issued_at, address",
            (user,))
        return [bytes(r[0]) for r in rows]

    async def wallet_owner(self, address: str) -> bytes | None:
        rows = await self._read("SELECT user FROM wallet_links WHERE address = ?", (address,))
        return bytes(rows[0][0]) if rows else None

    @write
    def put_wallet_link(self, tx: Tx, address: str, user: bytes, issued_at: int,
                        record: bytes) -> None:
        # A replayed older binding can't take an address back from a newer one.
        if not tx.run_sql(
                "INSERT INTO wallet_links (address, user, issued_at, record) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (address) DO UPDATE SET user = excluded.user,"
                " issued_at = excluded.issued_at, record = excluded.record"
                " WHERE excluded.issued_at >= wallet_links.issued_at",
                (address, user, issued_at, record)):
            raise ProtocolError(ErrorCode.FORBIDDEN, "a newer binding of this wallet is stored")

    @write
    def wallet_unlink(self, tx: Tx, user: bytes, address: str) -> bool:
        return tx.run_sql("DELETE FROM wallet_links WHERE address = ? AND user = ?",
                          (address, user)) > 0
