"""SQLite: the device-linking rendezvous (docs/protocol.md §6E): single-use slots of one
blob each, gone after LINK_TTL_MS. Expired rows are ignored by every read, deleted before
a put counts (so they never hold a quota) and by the expiry sweep (upkeep.py)."""

from __future__ import annotations

from tenchat.common.errors import ErrorCode, ProtocolError

from ..limits import LINK_PER_OWNER, LINK_TTL_MS
from ..writer import write
from .base import SQLiteBase, Tx

__all__ = ["Linking"]


class Linking(SQLiteBase):
    @write
    def put_link(self, tx: Tx, slot: bytes, blob: bytes, owner: bytes) -> None:
        now = self._clock()
        tx.run_sql("DELETE FROM link_slots WHERE expires_at <= ?", (now,))
        if tx.one("SELECT 1 FROM link_slots WHERE slot = ?", (slot,)) is not None:
            raise ProtocolError(ErrorCode.FORBIDDEN, "this rendezvous slot is taken")
        if tx.one("SELECT count(*) FROM link_slots WHERE owner = ?",
                  (owner,))[0] >= LINK_PER_OWNER:
            raise ProtocolError(ErrorCode.QUOTA_EXCEEDED, "too many link blobs of yours wait")
        held = tx.one("SELECT coalesce(sum(length(blob)), 0) FROM link_slots")[0]
        if held + len(blob) > self.link_bytes_max:
            raise ProtocolError(ErrorCode.QUOTA_EXCEEDED, "the relay holds too many link blobs")
        tx.run_sql("INSERT INTO link_slots (slot, owner, expires_at, blob) VALUES (?, ?, ?, ?)",
                   (slot, owner, now + LINK_TTL_MS, blob))

    @write
    def take_link(self, tx: Tx, slot: bytes) -> bytes | None:
        rows = tx.all("DELETE FROM link_slots WHERE slot = ? AND expires_at > ? RETURNING blob",
                      (slot, self._clock()))
        return bytes(rows[0][0]) if rows else None
