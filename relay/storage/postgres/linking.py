"""PostgreSQL: the device-linking rendezvous (docs/protocol.md §6E), shared by every node
on the database: single-use slots of one blob each, gone after LINK_TTL_MS. Expired rows
are ignored by every read, deleted before a put counts (so they never hold a quota) and
by the expiry sweep (upkeep.py). A put's quotas are counted under one advisory lock held
to the commit (puts are rare: a few per linked device), so two nodes can't both pass
them; a take is one DELETE ... RETURNING, so of two takes on two nodes one gets the blob.
"""

from __future__ import annotations

from typing import Final

from tenchat.common.errors import ErrorCode, ProtocolError

from ..limits import LINK_PER_OWNER, LINK_TTL_MS
from .base import PostgresBase, Tx, write

__all__ = ["Linking"]

_LINK_LOCK: Final = 0x6C696E6B  # "link": the advisory lock every put takes


class Linking(PostgresBase):
    @write
    async def put_link(self, tx: Tx, slot: bytes, blob: bytes, owner: bytes) -> None:
        now = self._clock()
        await tx.run_sql("SELECT pg_advisory_xact_lock($1)", _LINK_LOCK)
        await tx.run_sql("DELETE FROM link_slots WHERE expires_at <= $1", now)
        if await tx.value("SELECT count(*) FROM link_slots WHERE slot = $1", slot):
            raise ProtocolError(ErrorCode.FORBIDDEN, "this rendezvous slot is taken")
        if await tx.value("SELECT count(*) FROM link_slots WHERE owner = $1",
                          owner) >= LINK_PER_OWNER:
            raise ProtocolError(ErrorCode.QUOTA_EXCEEDED, "too many link blobs of yours wait")
        held = await tx.value("SELECT coalesce(sum(length(blob)), 0) FROM link_slots")
        if held + len(blob) > self.link_bytes_max:
            raise ProtocolError(ErrorCode.QUOTA_EXCEEDED, "the relay holds too many link blobs")
        await tx.run_sql("INSERT INTO link_slots (slot, owner, expires_at, blob)"
                         " VALUES ($1, $2, $3, $4)", slot, owner, now + LINK_TTL_MS, blob)

    @write
    async def take_link(self, tx: Tx, slot: bytes) -> bytes | None:
        row = await tx.one("DELETE FROM link_slots WHERE slot = $1 AND expires_at > $2"
                           " RETURNING blob", slot, self._clock())
        return None if row is None else bytes(row[0])
