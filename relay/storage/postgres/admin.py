"""``tenchat-relay admin`` on PostgreSQL: the database the relay's nodes share (../admin.py).

One asyncpg connection, driven from the synchronous CLI by an event loop of its own
(``asyncio.Runner``). The changes are the running relay's own statements
(operations.py), each in one transaction with its audit row (actor: none, detail:
"cli"); a ban takes the cluster's ban lock, so every node's ban poll sees it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import asyncpg

from ..admin import AdminError, audit_dict, parse_who, stats_queries, user_dict
from ..factory import storage_label
from ..limits import now_ms
from ..records import AuditEntry
from ..writer import Committed
from . import operations as ops
from .base import Tx
from .schema import MIGRATIONS

__all__ = ["PostgresAdmin"]

T = TypeVar("T")

_USERS = (
    "SELECT h.user_id, h.handle, h.at, b.at IS NOT NULL, q.blob_quota,"
    " (SELECT count(*) FROM messages WHERE recipient = h.user_id),"
    " (SELECT coalesce(sum(size), 0) FROM blobs WHERE owner = h.user_id)"
    " FROM handles AS h LEFT JOIN bans AS b ON b.user_id = h.user_id"
    " LEFT JOIN quotas AS q ON q.user_id = h.user_id ORDER BY h.at, h.handle")


class PostgresAdmin:
    """The relay's PostgreSQL database opened by ``tenchat-relay admin``."""

    def __init__(self, url: str) -> None:
        self.where = storage_label(url)
        self._runner = asyncio.Runner()
        try:
            self.db: asyncpg.Connection = self._run(self._connect(url))
        except BaseException:
            self._runner.close()
            raise

    async def _connect(self, url: str) -> asyncpg.Connection:
        db = await asyncpg.connect(url)
        try:
            version = await db.fetchval("SELECT version FROM schema_version")
        except asyncpg.UndefinedTableError:
            version = None
        if version != len(MIGRATIONS):
            await db.close()
            if version is None:
                raise AdminError(f"no relay database at {self.where} (start the relay once first)")
            raise AdminError(f"{self.where} has schema version {version}, this tool"
                             f" {len(MIGRATIONS)}: start the matching relay once to migrate it")
        return db

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end; the database's failures as AdminError (one line)."""
        try:
            return self._runner.run(work)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise AdminError(f"cannot use PostgreSQL at {self.where}: {exc}") from None

    def close(self) -> None:
        try:
            self._run(self.db.close())
        finally:
            self._runner.close()

    def __enter__(self) -> PostgresAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, change: Callable[[Tx], Awaitable[Any]], action: str,
               target: bytes | None, detail: str = "cli", *, none: str = "") -> None:
        """``change`` and the audit row in one transaction; if ``change`` returns False
        and ``none`` says why that is an error, nothing (AdminError(none))."""

        async def work() -> None:
            async with self.db.transaction():
                tx = Tx(self.db, Committed())
                if await change(tx) is False and none:
                    raise AdminError(none)
                await ops.insert_audit(tx, AuditEntry(now_ms(), None, action, target, detail))

        self._run(work())

    def resolve(self, who: str) -> bytes:
        """An identity by @handle, handle or 64-digit hex public key."""
        handle = parse_who(who)
        if isinstance(handle, bytes):
            return handle
        user = self._run(self.db.fetchval("SELECT user_id FROM handles WHERE handle = $1",
                                          handle))
        if user is None:
            raise AdminError(f"no identity holds @{handle}")
        return bytes(user)

    def users(self) -> list[dict[str, Any]]:
        return [user_dict(row) for row in self._run(self.db.fetch(_USERS))]

    def ban(self, user: bytes, reason: str = "") -> None:
        self._write(lambda tx: ops.ban(tx, user, now_ms(), reason), "ban", user,
                    f"cli {reason}".strip())

    def unban(self, user: bytes) -> None:
        self._write(lambda tx: ops.unban(tx, user), "unban", user,
                    none="this identity is not banned")

    def remove_post(self, post: bytes) -> None:
        self._write(lambda tx: ops.remove(tx, "remove_post", post), "remove_post", post,
                    none="no post with this id")

    def remove_comment(self, comment: bytes) -> None:
        self._write(lambda tx: ops.remove(tx, "remove_comment", comment), "remove_comment",
                    comment, none="no comment with this id")

    def set_quota(self, user: bytes, blob_quota: int | None) -> None:
        detail = "cli default" if blob_quota is None else f"cli {blob_quota}"
        self._write(lambda tx: ops.set_quota(tx, user, blob_quota), "quota", user, detail)

    def invite(self, count: int = 1, expires_at: int = 0) -> list[str]:
        codes = [secrets.token_urlsafe(12) for _ in range(count)]
        self._write(lambda tx: ops.add_invites(tx, codes, now_ms(), expires_at), "invite",
                    None, f"cli {count} code(s)")
        return codes

    def stats(self) -> dict[str, int]:
        async def numbers() -> dict[str, int]:
            return {name: int(await self.db.fetchval(sql))
                    for name, sql in stats_queries(now_ms()).items()}

        return self._run(numbers())

    def audit(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._run(self.db.fetch(
            "SELECT id, at, actor, action, target, detail, ip, count FROM audit"
            " ORDER BY id DESC LIMIT $1", limit))
        return [audit_dict(row) for row in reversed(rows)]
