"""``tenchat-relay admin`` on SQLite: the relay's file, opened directly (../admin.py).

Safe alongside a running relay (WAL; writes wait for the relay's writer with a busy
timeout). Every change writes an audit row (actor: none, detail: "cli"). A running relay
finds bans made here by polling ``bans`` by id (Store.bans_after).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..admin import AdminError, audit_dict, parse_who, stats_queries, user_dict
from .operations import AUDIT, BAN, REMOVE_COMMENT, REMOVE_POST, UNBAN
from .schema import MIGRATIONS

__all__ = ["AdminDB", "AdminError"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class AdminDB:
    """The relay's database opened by ``tenchat-relay admin``, safe alongside a running
    relay. Every change writes an audit row (actor: none, detail: "cli")."""

    def __init__(self, data: Path) -> None:
        path = data / "relay.sqlite3"
        if not path.exists():
            raise AdminError(f"no relay database in {data} (start the relay once first)")
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
        self.db.execute("PRAGMA busy_timeout=10000")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version != len(MIGRATIONS):
            self.db.close()
            raise AdminError(f"{path} has schema version {version}, this tool {len(MIGRATIONS)}:"
                             " start the matching relay once to migrate it")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AdminDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, statements: list[tuple[str, tuple[Any, ...]]], action: str,
               target: bytes | None, detail: str = "cli", *, none: str = "") -> None:
        """Run statements and the audit row in one transaction; if the last changed no
        row and ``none`` says why that is an error, nothing (AdminError(none))."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            count = 0
            for sql, params in statements:
                count = db.execute(sql, params).rowcount
            if none and not count:
                raise AdminError(none)
            db.execute(AUDIT, (_now_ms(), None, action, target, detail, None, 1))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def resolve(self, who: str) -> bytes:
        """An identity by @handle, handle or 64-digit hex public key."""
        handle = parse_who(who)
        if isinstance(handle, bytes):
            return handle
        row = self.db.execute("SELECT user FROM handles WHERE handle = ?", (handle,)).fetchone()
        if row is None:
            raise AdminError(f"no identity holds @{handle}")
        return bytes(row[0])

    def users(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT h.user, h.handle, h.at, b.at IS NOT NULL, q.blob_quota,"
            " (SELECT count(*) FROM messages WHERE recipient = h.user),"
            " (SELECT coalesce(sum(size), 0) FROM blobs WHERE owner = h.user)"
            " FROM handles AS h LEFT JOIN bans AS b ON b.user = h.user"
            " LEFT JOIN quotas AS q ON q.user = h.user ORDER BY h.at, h.handle").fetchall()
        return [user_dict(row) for row in rows]

    def ban(self, user: bytes, reason: str = "") -> None:
        self._write([(BAN, (user, _now_ms(), reason))], "ban", user, f"cli {reason}".strip())

    def unban(self, user: bytes) -> None:
        self._write([(UNBAN, (user,))], "unban", user, none="this identity is not banned")

    def remove_post(self, post: bytes) -> None:
        self._write([(sql, (post,)) for sql in REMOVE_POST], "remove_post", post,
                    none="no post with this id")

    def remove_comment(self, comment: bytes) -> None:
        self._write([(REMOVE_COMMENT[0], (comment,))], "remove_comment", comment,
                    none="no comment with this id")

    def set_quota(self, user: bytes, blob_quota: int | None) -> None:
        if blob_quota is None:
            self._write([("DELETE FROM quotas WHERE user = ?", (user,))], "quota", user,
                        "cli default")
        else:
            self._write([("INSERT OR REPLACE INTO quotas (user, blob_quota) VALUES (?, ?)",
                          (user, blob_quota))], "quota", user, f"cli {blob_quota}")

    def invite(self, count: int = 1, expires_at: int = 0) -> list[str]:
        codes = [secrets.token_urlsafe(12) for _ in range(count)]
        now = _now_ms()
        self._write([("INSERT INTO invites (code, created_at, expires_at) VALUES (?, ?, ?)",
                      (code, now, expires_at)) for code in codes], "invite", None,
                    f"cli {count} code(s)")
        return codes

    def stats(self) -> dict[str, int]:
        return {name: int(self.db.execute(sql).fetchone()[0])
                for name, sql in stats_queries(_now_ms()).items()}

    def audit(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, at, actor, action, target, detail, ip, count FROM audit"
            " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [audit_dict(row) for row in reversed(rows)]
