"""SQLite: accounts' signed device lists (common.devices) and the device index."""

from __future__ import annotations

from tenchat.common.errors import ErrorCode, ProtocolError

from ..writer import write
from .base import SQLiteBase, Tx

__all__ = ["Devices"]


class Devices(SQLiteBase):
    async def device_list(self, user: bytes) -> bytes | None:
        rows = await self._read(
            "SELECT record FROM device_lists WHERE account = ? UNION ALL"
            " SELECT l.record FROM devices d JOIN device_lists l ON l.account = d.account"
            " WHERE d.device = ? LIMIT 1", (user, user))
        return bytes(rows[0][0]) if rows else None

    @write
    def put_device_list(self, tx: Tx, account: bytes, version: int, devices: list[bytes],
                        record: bytes) -> None:
        stored = tx.one("SELECT version FROM device_lists WHERE account = ?",
                                (account,))
        if stored is not None and stored[0] >= version:
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                f"a device list of version {stored[0]} is stored")
        for device in devices:
            owner = tx.one("SELECT account FROM devices WHERE device = ?", (device,))
            if owner is not None and bytes(owner[0]) != account:
                raise ProtocolError(ErrorCode.FORBIDDEN, "a device is another account's")
        tx.run_sql("INSERT INTO device_lists (account, version, record) VALUES (?, ?, ?)"
                   " ON CONFLICT (account) DO UPDATE SET version = excluded.version,"
                   " record = excluded.record", (account, version, record))
        tx.run_sql("DELETE FROM devices WHERE account = ?", (account,))
        for device in devices:
            tx.run_sql("INSERT INTO devices (device, account) VALUES (?, ?)", (device, account))
