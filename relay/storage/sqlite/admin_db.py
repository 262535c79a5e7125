"""``tenchat-relay admin``: the relay's SQLite file, opened directly.

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

from tenchat.common import identity
from tenchat.common.errors import ProtocolError

from .operations import AUDIT, BAN, REMOVE_COMMENT, REMOVE_POST, UNBAN
from .schema import MIGRATIONS

__all__ = ["AdminDB", "AdminError"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class AdminError(Exception):
    """An admin command cannot be done; the message says why."""


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
               target: bytes | None, detail: str = "cli") -> int:
        """Run statements and the audit row in one transaction; the last rowcount."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            count = 0
            for sql, params in statements:
                count = db.execute(sql, params).rowcount
            db.execute(AUDIT, (_now_ms(), None, action, target, detail, None, 1))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return count

    def resolve(self, who: str) -> bytes:
        """An identity by @handle, handle or 64-digit hex public key."""
        text = who.strip()
        if len(text) == 64:
            try:
                return bytes.fromhex(text)
            except ValueError:
                pass
        try:
            handle = identity.normalize_handle(text.removeprefix("@"))
        except ProtocolError:
            raise AdminError(f"{who!r} is neither an @handle nor a hex public key") from None
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
        return [{"user_id": bytes(u).hex(), "handle": h, "registered_at": at,
                 "banned": bool(banned), "blob_quota": quota, "queued": queued,
                 "blob_bytes": blob_bytes}
                for u, h, at, banned, quota, queued, blob_bytes in rows]

    def ban(self, user: bytes, reason: str = "") -> None:
        self._write([(BAN, (user, _now_ms(), reason))], "ban", user, f"cli {reason}".strip())

    def unban(self, user: bytes) -> None:
        if not self._write([(UNBAN, (user,))], "unban", user):
            raise AdminError("this identity is not banned")

    def remove_post(self, post: bytes) -> None:
        if not self._write([(sql, (post,)) for sql in REMOVE_POST], "remove_post", post):
            raise AdminError("no post with this id")

    def remove_comment(self, comment: bytes) -> None:
        if not self._write([(REMOVE_COMMENT[0], (comment,))], "remove_comment", comment):
            raise AdminError("no comment with this id")

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
        one = lambda sql: int(self.db.execute(sql).fetchone()[0])  # noqa: E731
        return {
            "users": one("SELECT count(*) FROM handles"),
            "queued_messages": one("SELECT count(*) FROM messages"),
            "groups": one("SELECT count(*) FROM groups"),
            "posts": one("SELECT count(*) FROM posts"),
            "comments": one("SELECT count(*) FROM comments"),
            "blobs": one("SELECT count(*) FROM blobs"),
            "blob_bytes": one("SELECT coalesce(sum(size), 0) FROM blobs"),
            "banned": one("SELECT count(*) FROM bans"),
            "invites_open": one("SELECT count(*) FROM invites WHERE used_by IS NULL"
                                f" AND (expires_at = 0 OR expires_at > {_now_ms()})"),
        }

    def audit(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, at, actor, action, target, detail, ip, count FROM audit"
            " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [{"id": i, "at": at, "actor": bytes(a).hex() if a else None, "action": act,
                 "target": bytes(t).hex() if t else None, "detail": d, "ip": ip,
                 "count": n}
                for i, at, a, act, t, d, ip, n in reversed(rows)]
