"""``tenchat-relay admin``'s view of a relay's database, for either backend.

:func:`open_admin` opens the database the ``storage`` setting names — the SQLite file
of the data directory (sqlite/admin_db.py) or the PostgreSQL database the relay's nodes
share (postgres/admin.py) — as an :class:`Admin`: the same operations and the same
answers on both. Both are safe alongside running relays: each change is one
transaction with its audit row (actor: none, detail: "cli"), and a running relay finds
bans made here by polling ``bans`` by id (Store.bans_after) — on PostgreSQL every node
polls the shared table, so a ban reaches the identity's connections on any node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Protocol

from tenchat.common import identity
from tenchat.common.errors import ProtocolError

__all__ = ["Admin", "AdminError", "open_admin", "parse_who", "stats_queries",
           "user_dict", "audit_dict"]


class AdminError(Exception):
    """An admin command cannot be done; the message says why."""


class Admin(Protocol):
    """A relay's database opened by ``tenchat-relay admin`` (a context manager)."""

    def __enter__(self) -> Admin: ...
    def __exit__(self, *exc: object) -> None: ...
    def resolve(self, who: str) -> bytes: ...
    def users(self) -> list[dict[str, Any]]: ...
    def ban(self, user: bytes, reason: str = "") -> None: ...
    def unban(self, user: bytes) -> None: ...
    def remove_post(self, post: bytes) -> None: ...
    def remove_comment(self, comment: bytes) -> None: ...
    def set_quota(self, user: bytes, blob_quota: int | None) -> None: ...
    def invite(self, count: int = 1, expires_at: int = 0) -> list[str]: ...
    def stats(self) -> dict[str, int]: ...
    def audit(self, limit: int = 50) -> list[dict[str, Any]]: ...


def open_admin(storage: str, data: Path) -> Admin:
    """The database ``storage`` names ("sqlite": the one in ``data``); AdminError if it
    can't be used."""
    if storage == "sqlite":
        from .sqlite.admin_db import AdminDB

        return AdminDB(data)
    try:
        from .postgres.admin import PostgresAdmin
    except ImportError as exc:
        raise AdminError(f"storage = postgresql needs {exc.name}:"
                         " pip install 'tenchat[cluster]'") from None
    return PostgresAdmin(storage)


def parse_who(who: str) -> bytes | str:
    """An identity named on the command line: its public key (64 hex digits), or its
    handle (normalized) to look up."""
    text = who.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        return identity.normalize_handle(text.removeprefix("@"))
    except ProtocolError:
        raise AdminError(f"{who!r} is neither an @handle nor a hex public key") from None


_STATS: Final = {  # the same SQL on both backends
    "users": "SELECT count(*) FROM handles",
    "queued_messages": "SELECT count(*) FROM messages",
    "groups": "SELECT count(*) FROM groups",
    "posts": "SELECT count(*) FROM posts",
    "comments": "SELECT count(*) FROM comments",
    "blobs": "SELECT count(*) FROM blobs",
    "blob_bytes": "SELECT coalesce(sum(size), 0) FROM blobs",
    "banned": "SELECT count(*) FROM bans",
    "invites_open": "SELECT count(*) FROM invites WHERE used_by IS NULL"
                    " AND (expires_at = 0 OR expires_at > {now})",
}


def stats_queries(now: int) -> dict[str, str]:
    """``stats``' numbers: name -> a query of one value."""
    return {name: sql.format(now=int(now)) for name, sql in _STATS.items()}


def user_dict(row: Any) -> dict[str, Any]:
    """A ``users`` row (user, handle, at, banned, quota, queued, blob bytes) as printed."""
    user, handle, at, banned, quota, queued, blob_bytes = row
    return {"user_id": bytes(user).hex(), "handle": handle, "registered_at": int(at),
            "banned": bool(banned), "blob_quota": None if quota is None else int(quota),
            "queued": int(queued), "blob_bytes": int(blob_bytes)}


def audit_dict(row: Any) -> dict[str, Any]:
    """An ``audit`` row (id, at, actor, action, target, detail, ip, count) as printed."""
    i, at, actor, action, target, detail, ip, count = row
    return {"id": int(i), "at": int(at), "actor": bytes(actor).hex() if actor else None,
            "action": action, "target": bytes(target).hex() if target else None,
            "detail": detail, "ip": ip, "count": int(count)}
