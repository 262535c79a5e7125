"""PostgreSQL: accounts' signed device lists (common.devices) and the device index."""

from __future__ import annotations

from tenchat.common.errors import ErrorCode, ProtocolError

from .base import PostgresBase, Tx, write

__all__ = ["Devices"]


class Devices(PostgresBase):
    async def device_list(self, user: bytes) -> bytes | None:
        record = await self._read_value(
            "SELECT record FROM device_lists WHERE account = $1 UNION ALL"
            " SELECT l.record FROM devices d JOIN device_lists l ON l.account = d.account"
            " WHERE d.device = $1 LIMIT 1", user)
        return None if record is None else bytes(record)

    @write
    async def device_cursors(self, tx: Tx, device: bytes, member: dict[bytes, int]
                             ) -> dict[bytes, int]:
        if member:
            await tx.run_sql(
                "INSERT INTO group_device_cursors (grp, device, cursor)"
                " SELECT g, $2, c FROM unnest($1::bytea[], $3::bigint[]) AS t(g, c)"
                " ON CONFLICT DO NOTHING", list(member), device, list(member.values()))
        rows = await tx.all("SELECT grp, cursor FROM group_device_cursors WHERE device = $1",
                            device)
        return {bytes(r[0]): r[1] for r in rows if bytes(r[0]) in member}

    @write
    async def device_group_ack(self, tx: Tx, device: bytes, member: bytes, group: bytes,
                               upto: int) -> None:
        row = await tx.one("SELECT g.last_gseq FROM group_members m JOIN groups g"
                           " ON g.id = m.grp WHERE m.grp = $1 AND m.user_id = $2",
                           group, member)
        if row is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, "not a member of this group")
        await tx.run_sql(
            "INSERT INTO group_device_cursors (grp, device, cursor) VALUES ($1, $2, $3)"
            " ON CONFLICT (device, grp) DO UPDATE SET"
            " cursor = greatest(group_device_cursors.cursor, excluded.cursor)",
            group, device, min(upto, row[0]))

    @write
    async def put_device_list(self, tx: Tx, account: bytes, version: int,
                              devices: list[bytes], record: bytes) -> None:
        others = await tx.value("SELECT count(*) FROM devices WHERE device = ANY($1::bytea[])"
                                " AND account <> $2", devices, account)
        if others:
            raise ProtocolError(ErrorCode.FORBIDDEN, "a device is another account's")
        # One statement decides (nodes may race): only a higher version replaces.
        if not await tx.run_sql(
                "INSERT INTO device_lists (account, version, record) VALUES ($1, $2, $3)"
                " ON CONFLICT (account) DO UPDATE SET version = excluded.version,"
                " record = excluded.record WHERE device_lists.version < excluded.version",
                account, version, record):
            raise ProtocolError(ErrorCode.FORBIDDEN, "a device list as new is stored")
        await tx.run_sql("DELETE FROM devices WHERE account = $1", account)
        await tx.run_sql("INSERT INTO devices (device, account)"
                         " SELECT unnest($1::bytea[]), $2", devices, account)
