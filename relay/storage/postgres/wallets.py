"""PostgreSQL: verified wallet bindings (common.wallets), one per address."""

from __future__ import annotations

from tenchat.common.errors import ErrorCode, ProtocolError

from .base import PostgresBase, Tx, write

__all__ = ["Wallets"]


class Wallets(PostgresBase):
    async def wallet_links(self, user: bytes) -> list[bytes]:
        rows = await self._read("SELECT record FROM wallet_links WHERE user_id = $1"
                                " ORDER BY issued_at, address", user)
        return [bytes(r[0]) for r in rows]

    async def wallet_owner(self, address: str) -> bytes | None:
        user = await self._read_value("SELECT user_id FROM wallet_links WHERE address = $1",
                                      address)
        return None if user is None else bytes(user)

    @write
    async def put_wallet_link(self, tx: Tx, address: str, user: bytes, issued_at: int,
                              record: bytes) -> None:
        # A replayed older binding can't take an address back from a newer one.
        if not await tx.run_sql(
                "INSERT INTO wallet_links (address, user_id, issued_at, record)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (address) DO UPDATE SET"
                " user_id = excluded.user_id, issued_at = excluded.issued_at,"
                " record = excluded.record WHERE excluded.issued_at >= wallet_links.issued_at",
                address, user, issued_at, record):
            raise ProtocolError(ErrorCode.FORBIDDEN, "a newer binding of this wallet is stored")

    @write
    async def wallet_unlink(self, tx: Tx, user: bytes, address: str) -> bool:
        return await tx.run_sql("DELETE FROM wallet_links WHERE address = $1 AND user_id = $2",
                                address, user) > 0
