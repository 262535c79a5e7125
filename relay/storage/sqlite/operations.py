"""SQLite: operations (relay/admin.py) — the audit log, bans, invites, quotas, moderation.

The same tables are written by ``tenchat-relay admin`` while the relay runs
(:mod:`.admin_db`); the statements both use are here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from tenchat.common.errors import ErrorCode, ProtocolError

from ..records import AuditEntry, HandleRecord
from ..writer import write
from .base import SQLiteBase, Tx
from .identities import bind_handle, check_handle

__all__ = ["Operations", "AUDIT", "BAN", "UNBAN", "REMOVE_POST", "REMOVE_COMMENT",
           "audit_row"]

AUDIT: Final = ("INSERT INTO audit (at, actor, action, target, detail, ip, count)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)")
BAN: Final = "INSERT OR REPLACE INTO bans (user, at, reason) VALUES (?, ?, ?)"
UNBAN: Final = "DELETE FROM bans WHERE user = ?"
# Removing a post removes what hangs on it.
REMOVE_POST: Final = (
    "DELETE FROM reactions WHERE post = ?",
    "DELETE FROM comments WHERE post = ?",
    "DELETE FROM posts WHERE id = ?",  # last: its rowcount says whether there was one
)
REMOVE_COMMENT: Final = ("DELETE FROM comments WHERE id = ?",)


def audit_row(e: AuditEntry) -> tuple[object, ...]:
    return (e.at, e.actor, e.action, e.target, e.detail, e.ip, e.count)


class Operations(SQLiteBase):
    async def audit_log(self, limit: int) -> list[AuditEntry]:
        rows = await self._read(
            "SELECT at, actor, action, target, detail, ip, count, id FROM audit"
            " ORDER BY id DESC LIMIT ?", (limit,))
        return [AuditEntry(at, bytes(a) if a is not None else None, act,
                           bytes(t) if t is not None else None, d, ip, n, i)
                for at, a, act, t, d, ip, n, i in reversed(rows)]

    async def is_banned(self, user: bytes) -> bool:
        return bool(await self._read("SELECT 1 FROM bans WHERE user = ?", (user,)))

    async def bans_after(self, after: int) -> list[tuple[int, bytes]]:
        rows = await self._read("SELECT id, user FROM bans WHERE id > ? ORDER BY id", (after,))
        return [(int(i), bytes(u)) for i, u in rows]

    async def last_ban(self) -> int:
        rows = await self._read("SELECT coalesce(max(id), 0) FROM bans")
        return int(rows[0][0])

    async def blob_quota(self, user: bytes) -> int | None:
        rows = await self._read("SELECT blob_quota FROM quotas WHERE user = ?", (user,))
        return int(rows[0][0]) if rows else None

    @write
    def audit_insert(self, tx: Tx, entry: AuditEntry) -> int:
        return int(tx.db.execute(AUDIT, audit_row(entry)).lastrowid or 0)

    @write
    def audit_add(self, tx: Tx, row_id: int, count: int) -> None:
        tx.run_sql("UPDATE audit SET count = count + ? WHERE id = ?", (count, row_id))

    @write
    def set_blob_quota(self, tx: Tx, user: bytes, quota: int | None) -> None:
        if quota is None:
            tx.run_sql("DELETE FROM quotas WHERE user = ?", (user,))
        else:
            tx.run_sql("INSERT OR REPLACE INTO quotas (user, blob_quota) VALUES (?, ?)",
                       (user, quota))

    @write
    def add_invites(self, tx: Tx, codes: Sequence[str], expires_at: int) -> None:
        now = self._clock()
        tx.db.executemany("INSERT INTO invites (code, created_at, expires_at) VALUES (?, ?, ?)",
                          [(code, now, expires_at) for code in codes])

    @write
    def register_invited(self, tx: Tx, user: bytes, handle: str, sig: bytes,
                         code: str) -> HandleRecord:
        held = check_handle(tx, user, handle)
        if held is not None:
            return held  # registering again: nothing to use up
        if not code:
            raise ProtocolError(ErrorCode.INVITE_REQUIRED,
                                "this relay is invite-only: register with an invite code")
        now = self._clock()
        row = tx.one("SELECT used_by, expires_at FROM invites WHERE code = ?", (code,))
        if not row or row[0] is not None or (row[1] and row[1] <= now):
            raise ProtocolError(ErrorCode.BAD_INVITE, "the invite code is unknown, used or expired")
        tx.run_sql("UPDATE invites SET used_by = ?, used_at = ? WHERE code = ?",
                   (user, now, code))
        self._known.add(user)
        return bind_handle(tx, user, handle, sig, now)

    @write
    def moderate(self, tx: Tx, action: str, target: bytes, reason: str,
                 audit: AuditEntry) -> None:
        if action in ("remove_post", "remove_comment"):
            table = "posts" if action == "remove_post" else "comments"
            if not tx.one(f"SELECT 1 FROM {table} WHERE id = ?", (target,)):
                raise ProtocolError(ErrorCode.NOT_FOUND, f"no {action[7:]} with this id")
            for sql in REMOVE_POST if action == "remove_post" else REMOVE_COMMENT:
                tx.run_sql(sql, (target,))
        elif len(target) != 32:
            raise ProtocolError(ErrorCode.MALFORMED, "a ban names a 32-byte identity")
        elif action == "ban":
            tx.run_sql(BAN, (target, self._clock(), reason))
        elif not tx.one("SELECT 1 FROM bans WHERE user = ?", (target,)):
            raise ProtocolError(ErrorCode.NOT_FOUND, "this identity is not banned")
        else:
            tx.run_sql(UNBAN, (target,))
        tx.run_sql(AUDIT, audit_row(audit))
