"""PostgreSQL: operations (relay/admin.py) — the audit log, bans, invites, quotas, moderation.

Ban ids only grow and a running relay polls for new ones by id (``bans_after``), so a
ban is written under one advisory lock for the cluster: ids commit in id order, and a
poll never passes one that is still to commit. The changes are functions of a
transaction, shared with ``tenchat-relay admin`` (admin.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tenchat.common.errors import ErrorCode, ProtocolError

from ..records import AuditEntry, HandleRecord
from .base import PostgresBase, Tx, write
from .identities import bind_handle, check_handle

__all__ = ["Operations", "insert_audit", "ban", "unban", "remove", "set_quota", "add_invites"]

_AUDIT: Final = ("INSERT INTO audit (at, actor, action, target, detail, ip, count)"
                 " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
_BANS_LOCK: Final = 0x74656E6368617442  # "tenchatB"
# Removing a post removes what hangs on it.
_REMOVE: Final = {
    "remove_post": ("DELETE FROM reactions WHERE post = $1", "DELETE FROM comments WHERE post = $1",
                    "DELETE FROM posts WHERE id = $1"),
    "remove_comment": ("DELETE FROM comments WHERE id = $1",),
}


def _audit_row(e: AuditEntry) -> tuple[object, ...]:
    return (e.at, e.actor, e.action, e.target, e.detail, e.ip, e.count)


def _entry(row: Any) -> AuditEntry:
    at, actor, action, target, detail, ip, count, row_id = row
    return AuditEntry(at, bytes(actor) if actor is not None else None, action,
                      bytes(target) if target is not None else None, detail, ip,
                      count, row_id)


async def insert_audit(tx: Tx, entry: AuditEntry) -> int:
    """Write an audit row; its id."""
    return int(await tx.value(_AUDIT, *_audit_row(entry)))


async def ban(tx: Tx, user: bytes, at: int, reason: str) -> None:
    await tx.run_sql("SELECT pg_advisory_xact_lock($1)", _BANS_LOCK)
    # A new id even for a user banned before (as SQLite's INSERT OR REPLACE), so every
    # node's poll sees the ban again.
    await tx.run_sql("DELETE FROM bans WHERE user_id = $1", user)
    await tx.run_sql("INSERT INTO bans (user_id, at, reason) VALUES ($1, $2, $3)",
                     user, at, reason)


async def unban(tx: Tx, user: bytes) -> bool:
    """Whether there was a ban to lift."""
    return bool(await tx.run_sql("DELETE FROM bans WHERE user_id = $1", user))


async def remove(tx: Tx, action: str, target: bytes) -> bool:
    """Remove a post (with what hangs on it) or a comment; whether there was one."""
    table = "posts" if action == "remove_post" else "comments"
    if not await tx.one(f"SELECT 1 FROM {table} WHERE id = $1", target):
        return False
    for sql in _REMOVE[action]:
        await tx.run_sql(sql, target)
    return True


async def set_quota(tx: Tx, user: bytes, quota: int | None) -> None:
    if quota is None:
        await tx.run_sql("DELETE FROM quotas WHERE user_id = $1", user)
    else:
        await tx.run_sql("INSERT INTO quotas (user_id, blob_quota) VALUES ($1, $2)"
                         " ON CONFLICT (user_id) DO UPDATE SET"
                         " blob_quota = excluded.blob_quota", user, quota)


async def add_invites(tx: Tx, codes: Sequence[str], now: int, expires_at: int) -> None:
    await tx.many("INSERT INTO invites (code, created_at, expires_at) VALUES ($1, $2, $3)",
                  [(code, now, expires_at) for code in codes])


class Operations(PostgresBase):
    async def audit_log(self, limit: int) -> list[AuditEntry]:
        rows = await self._read(
            "SELECT at, actor, action, target, detail, ip, count, id FROM audit"
            " ORDER BY id DESC LIMIT $1", limit)
        return [_entry(row) for row in reversed(rows)]

    async def is_banned(self, user: bytes) -> bool:
        return bool(await self._read_value(
            "SELECT EXISTS (SELECT 1 FROM bans WHERE user_id = $1)", user))

    async def bans_after(self, after: int) -> list[tuple[int, bytes]]:
        rows = await self._read("SELECT id, user_id FROM bans WHERE id > $1 ORDER BY id", after)
        return [(int(i), bytes(u)) for i, u in rows]

    async def last_ban(self) -> int:
        return int(await self._read_value("SELECT coalesce(max(id), 0) FROM bans"))

    async def blob_quota(self, user: bytes) -> int | None:
        quota = await self._read_value("SELECT blob_quota FROM quotas WHERE user_id = $1", user)
        return None if quota is None else int(quota)

    @write
    async def audit_insert(self, tx: Tx, entry: AuditEntry) -> int:
        return await insert_audit(tx, entry)

    @write
    async def audit_add(self, tx: Tx, row_id: int, count: int) -> None:
        await tx.run_sql("UPDATE audit SET count = count + $1 WHERE id = $2", count, row_id)

    @write
    async def set_blob_quota(self, tx: Tx, user: bytes, quota: int | None) -> None:
        await set_quota(tx, user, quota)

    @write
    async def add_invites(self, tx: Tx, codes: Sequence[str], expires_at: int) -> None:
        await add_invites(tx, codes, self._clock(), expires_at)

    @write
    async def register_invited(self, tx: Tx, user: bytes, handle: str, sig: bytes,
                               code: str) -> HandleRecord:
        held = await check_handle(tx, user, handle)
        if held is not None:
            return held  # registering again: nothing to use up
        if not code:
            raise ProtocolError(ErrorCode.INVITE_REQUIRED,
                                "this relay is invite-only: register with an invite code")
        now = self._clock()
        # FOR UPDATE: two nodes can't both use one code
        row = await tx.one("SELECT used_by, expires_at FROM invites WHERE code = $1"
                           " FOR UPDATE", code)
        if not row or row[0] is not None or (row[1] and row[1] <= now):
            raise ProtocolError(ErrorCode.BAD_INVITE, "the invite code is unknown, used or expired")
        await tx.run_sql("UPDATE invites SET used_by = $1, used_at = $2 WHERE code = $3",
                         user, now, code)
        self._known.add(user)
        return await bind_handle(tx, user, handle, sig, now)

    @write
    async def moderate(self, tx: Tx, action: str, target: bytes, reason: str,
                       audit: AuditEntry) -> None:
        if action in _REMOVE:
            if not await remove(tx, action, target):
                raise ProtocolError(ErrorCode.NOT_FOUND, f"no {action[7:]} with this id")
        elif len(target) != 32:
            raise ProtocolError(ErrorCode.MALFORMED, "a ban names a 32-byte identity")
        elif action == "ban":
            await ban(tx, target, self._clock(), reason)
        elif not await unban(tx, target):
            raise ProtocolError(ErrorCode.NOT_FOUND, "this identity is not banned")
        await insert_audit(tx, audit)
