"""The wallet tables of the local cache (keys sealed with the storage key, balances,
gifts, contract-hook cursors). Methods do not commit, like the rest of the cache."""

from __future__ import annotations

from dataclasses import dataclass

from ..cache.repo import Repo

__all__ = ["WalletStore", "BalanceRow", "GiftRow"]


@dataclass(frozen=True, slots=True)
class BalanceRow:
    chain_id: int
    address: str
    token: str  # '' native
    symbol: str
    decimals: int
    amount: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class GiftRow:
    chain_id: int
    tx_hash: bytes
    peer: bytes
    outgoing: bool
    msg_id: bytes
    status: str  # pending | confirmed | failed
    token: str
    symbol: str
    decimals: int
    amount: int | None  # None until read from the chain
    sender: str
    recipient: str
    block: int
    reason: str
    created_at: int
    updated_at: int

    @property
    def unknown_token(self) -> bool:
        """A token contract not in the configured token list (then ``symbol`` is '' and
        ``amount`` is in the contract's raw units): the CLI and the TUI show it by address,
        marked unknown, never by the name the contract gives itself."""
        return bool(self.token) and not self.symbol


_GIFT_COLS = ("chain_id, tx_hash, peer, outgoing, msg_id, status, token, symbol, decimals, "
              "amount, sender, recipient, block, reason, created_at, updated_at")


def _gift(r: tuple) -> GiftRow:  # type: ignore[type-arg]
    return GiftRow(r[0], bytes(r[1]), bytes(r[2]), bool(r[3]), bytes(r[4]), r[5], r[6], r[7],
                   r[8], int(r[9]) if r[9] else None, r[10], r[11], r[12], r[13], r[14], r[15])


class WalletStore(Repo):
    """The wallet's repository: one connection and one transaction with the cache."""

    # --- keys ---------------------------------------------------------------------------

    async def put_key(self, address: str, key: bytes, now: int) -> bool:
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO wallet_keys (address, key_sealed, created_at)"
            " VALUES (?, ?, ?)", (address, self._seal(key), now))
        return cur.rowcount > 0

    async def key(self, address: str) -> bytes | None:
        async with self._db.execute("SELECT key_sealed FROM wallet_keys WHERE address = ?",
                                    (address,)) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def addresses(self) -> list[tuple[str, int]]:
        async with self._db.execute(
                "SELECT address, created_at FROM wallet_keys ORDER BY created_at, address"
        ) as cur:
            return [(r[0], r[1]) for r in await cur.fetchall()]

    async def remove_key(self, address: str) -> bool:
        cur = await self._db.execute("DELETE FROM wallet_keys WHERE address = ?", (address,))
        await self._db.execute("DELETE FROM wallet_balances WHERE address = ?", (address,))
        return cur.rowcount > 0

    # --- balances -----------------------------------------------------------------------

    async def put_balance(self, b: BalanceRow) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO wallet_balances (chain_id, address, token, symbol, decimals,"
            " amount, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (b.chain_id, b.address, b.token, b.symbol, b.decimals, str(b.amount), b.updated_at))

    async def balances(self) -> list[BalanceRow]:
        async with self._db.execute(
                "SELECT chain_id, address, token, symbol, decimals, amount, updated_at"
                " FROM wallet_balances ORDER BY address, chain_id, token") as cur:
            rows = await cur.fetchall()
        return [BalanceRow(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6]) for r in rows]

    # --- gifts --------------------------------------------------------------------------

    async def add_gift(self, chain_id: int, tx_hash: bytes, peer: bytes, outgoing: bool,
                       msg_id: bytes, now: int) -> bool:
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO gifts (chain_id, tx_hash, peer, outgoing, msg_id, status,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            (chain_id, tx_hash, peer, int(outgoing), msg_id, now, now))
        return cur.rowcount > 0

    async def settle_gift(self, chain_id: int, tx_hash: bytes, *, status: str, token: str,
                          symbol: str, decimals: int, amount: int | None, sender: str,
                          recipient: str, block: int, reason: str, now: int) -> None:
        await self._db.execute(
            "UPDATE gifts SET status = ?, token = ?, symbol = ?, decimals = ?, amount = ?,"
            " sender = ?, recipient = ?, block = ?, reason = ?, updated_at = ?"
            " WHERE chain_id = ? AND tx_hash = ?",
            (status, token, symbol, decimals, "" if amount is None else str(amount), sender,
             recipient, block, reason, now, chain_id, tx_hash))

    async def gifts(self, *, pending_only: bool = False) -> list[GiftRow]:
        where = " WHERE status = 'pending'" if pending_only else ""
        async with self._db.execute(
                f"SELECT {_GIFT_COLS} FROM gifts{where} ORDER BY created_at, tx_hash") as cur:
            return [_gift(tuple(r)) for r in await cur.fetchall()]

    async def gift(self, chain_id: int, tx_hash: bytes) -> GiftRow | None:
        async with self._db.execute(
                f"SELECT {_GIFT_COLS} FROM gifts WHERE chain_id = ? AND tx_hash = ?",
                (chain_id, tx_hash)) as cur:
            row = await cur.fetchone()
        return _gift(tuple(row)) if row else None

    async def set_message_text(self, peer: bytes, msg_id: bytes, text: str) -> bool:
        """The gift's chat row shows its settled status (the TUI's gift card)."""
        cur = await self._db.execute(
            "UPDATE messages SET text = ? WHERE peer = ? AND id = ? AND deleted = 0",
            (text, peer, msg_id))
        return cur.rowcount > 0

    # --- contract hooks ------------------------------------------------------------------

    async def watch_cursor(self, chain_id: int, contract: str, event: str,
                           grp: bytes) -> int | None:
        async with self._db.execute(
                "SELECT next_block FROM watch_cursors WHERE chain_id = ? AND contract = ?"
                " AND event = ? AND grp = ?", (chain_id, contract, event, grp)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else None

    async def set_watch_cursor(self, chain_id: int, contract: str, event: str, grp: bytes,
                               next_block: int) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO watch_cursors (chain_id, contract, event, grp, next_block)"
            " VALUES (?, ?, ?, ?, ?)", (chain_id, contract, event, grp, next_block))
