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
    def device_cursors(self, tx: Tx, device: bytes, member: dict[bytes, int]
                       ) -> dict[bytes, int]:
        tx.db.executemany("INSERT OR IGNORE INTO group_device_cursors (grp, device, cursor)"
                          " VALUES (?, ?, ?)", [(g, device, c) for g, c in member.items()])
        rows = tx.all("SELECT grp, cursor FROM group_device_cursors WHERE device = ?",
                      (device,))
        return {bytes(g): c for g, c in rows if bytes(g) in member}

    @write
    def device_group_ack(self, tx: Tx, device: bytes, member: bytes, group: bytes,
                         upto: int) -> None:
        row = tx.one("SELECT g.last_gseq, m.cursor FROM group_members m JOIN groups g"
                     " ON g.id = m.grp WHERE m.grp = ? AND m.user = ?", (group, member))
        if row is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, "not a member of this group")
        tx.run_sql("INSERT INTO group_device_cursors (grp, device, cursor) VALUES (?, ?, ?)"
                   " ON CONFLICT (device, grp) DO UPDATE SET"
                   " cursor = max(cursor, excluded.cursor)",
                   (group, device, min(upto, row[0])))

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
