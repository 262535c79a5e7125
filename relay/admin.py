"""Relay operations: roles, bans, invite codes, quotas, moderation and the audit log.

Two ways in, one set of tables (store migration "operations"):

- over the protocol: a ``moderate`` frame from an identity with the admin or moderator
  role (``admins`` / ``moderators`` in the relay config) — removals of public posts and
  comments, bans; a ban made here disconnects the identity at once;
- ``tenchat-relay admin ...`` (:class:`AdminDB`), which opens the relay's SQLite file
  directly, also while the relay runs (WAL; writes wait for the relay's writer with a
  busy timeout). A running relay finds bans made this way by polling the ``bans`` table
  (every ``ban_poll`` seconds, by id) and checks bans again on every ``auth``.

Audit rows record admin actions (either way in) and failed authentications; the client's
IP address only when ``audit_ip`` is on. Failed authentications are bounded three ways, so
an unauthenticated client can't grow the log (issue 12): a connection is closed after
``auth_fail_max`` of them; an address's failures past ``auth_fail_rate`` a minute are
refused with ``rate_limited`` and the connection closed, without a row; and the
failures of one address with the same action and reason within ``audit_window`` seconds
are one row whose ``count`` says how many (:class:`AuditAggregator`). Rows older than
``audit_retention_days`` are deleted by the retention sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from tenchat.common import identity
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import MODERATE_ACTIONS, HandleInfo, Moderate, Ok, Register

from .config import Config
from .handlers import Answer, handles
from .session import Later, Session, check_authenticated
from .store import MIGRATIONS

if TYPE_CHECKING:
    import aiosqlite

    from .store import Store

__all__ = [
    "ROLES", "role_of", "is_banned", "new_bans", "record_audit", "register_invited",
    "AdminDB", "AdminError", "disconnect", "AuditAggregator", "auth_failed",
]

log = logging.getLogger("tenchat.relay.admin")

ROLES: Final = ("user", "moderator", "admin")  # each may do what the ones before it may

# Removing a post removes what hangs on it.
_REMOVE_POST: Final = (
    "DELETE FROM reactions WHERE post = ?",
    "DELETE FROM comments WHERE post = ?",
    "DELETE FROM posts WHERE id = ?",  # last: its rowcount says whether there was one
)
_REMOVE_COMMENT: Final = ("DELETE FROM comments WHERE id = ?",)
_BAN: Final = "INSERT OR REPLACE INTO bans (user, at, reason) VALUES (?, ?, ?)"
_UNBAN: Final = "DELETE FROM bans WHERE user = ?"
_AUDIT: Final = (
    "INSERT INTO audit (at, actor, action, target, detail, ip) VALUES (?, ?, ?, ?, ?, ?)"
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def role_of(config: Config, user: bytes, handle: str | None) -> str:
    """The role the config gives an identity (by its hex public key or its @handle)."""
    names = {user.hex()}
    if handle:
        names.add("@" + handle)
    if names & set(config.admins):
        return "admin"
    if names & set(config.moderators):
        return "moderator"
    return "user"


# --- the running relay ---------------------------------------------------------------------


async def is_banned(store: Store, user: bytes) -> bool:
    return bool(await store.custom_read("SELECT 1 FROM bans WHERE user = ?", (user,)))


async def new_bans(store: Store, after: int) -> list[tuple[int, bytes]]:
    """(id, user) of bans made since ban ``after`` (by anyone, the CLI included)."""
    rows = await store.custom_read(
        "SELECT id, user FROM bans WHERE id > ? ORDER BY id", (after,))
    return [(int(i), bytes(u)) for i, u in rows]


def record_audit(session: Session, action: str, target: bytes | None, detail: str = "",
                 actor: bytes | None = None) -> asyncio.Future[Any]:
    """Queue an audit row; the client's address only if ``audit_ip`` is on."""
    ip = session.address if session.config.audit_ip else None
    who = actor if actor is not None else session.user
    row = (_now_ms(), who, action, target, detail, ip)

    async def write(db: aiosqlite.Connection) -> None:
        await db.execute(_AUDIT, row)

    fut = session.store.custom_write(write)
    fut.add_done_callback(_log_failure)
    return fut


class _Open:
    __slots__ = ("row", "repeats")

    def __init__(self, row: asyncio.Future[int]) -> None:
        self.row = row  # the id of the window's audit row, once written
        self.repeats = 0  # failures since, to add to its count


class AuditAggregator:
    """Repeated failures as one audit row: the first of a window is written at once
    (count 1), the repeats within ``window`` seconds are added to its count when the
    window closes (one UPDATE), so a flood costs two writes per window, not one each."""

    def __init__(self, store: Store, window: float) -> None:
        self.store = store
        self.window = window
        self._open: dict[tuple[str, str, str], _Open] = {}

    def record(self, key: tuple[str, str, str], row: tuple[Any, ...]) -> None:
        """``key``: (address, action, kind of failure); ``row`` as for audit_insert."""
        entry = self._open.get(key)
        if entry is not None:
            entry.repeats += 1
            return
        fut = self.store.audit_insert(row)
        fut.add_done_callback(_log_failure)
        entry = self._open[key] = _Open(fut)
        asyncio.get_running_loop().call_later(self.window, self._close, key, entry)

    def _close(self, key: tuple[str, str, str], entry: _Open) -> None:
        if self._open.get(key) is entry:
            del self._open[key]
        self._add(entry)

    def _add(self, entry: _Open) -> None:
        if not entry.repeats:
            return
        repeats, entry.repeats = entry.repeats, 0

        def written(row: asyncio.Future[int]) -> None:
            if not row.cancelled() and row.exception() is None:
                with contextlib.suppress(ProtocolError):  # shutting down
                    self.store.audit_add(row.result(), repeats).add_done_callback(
                        _log_failure)

        if entry.row.done():
            written(entry.row)  # now, not a loop turn later (shutdown closes the store)
        else:
            entry.row.add_done_callback(written)

    def flush(self) -> None:
        """Write every open window's repeats now (at shutdown, before the store closes)."""
        for entry in self._open.values():
            self._add(entry)
        self._open.clear()


def auth_failed(session: Session, kind: str, target: bytes | None, detail: str,
                actor: bytes | None = None) -> None:
    """A failed authentication on ``session``: audited (aggregated per address, within
    the address's budget), and the connection closed at its ``auth_fail_max``-th.
    Raises ``rate_limited`` (closing the connection) when the address is over budget."""
    session.auth_failures += 1
    config = session.config
    if session.auth_failures >= config.auth_fail_max:
        disconnect(session, "too many failed authentications")
    wait = session.guards.auth_failures.take(session.address)
    if wait:
        disconnect(session, "too many failed authentications from this address")
        raise ProtocolError(ErrorCode.RATE_LIMITED,
                            f"too many failed authentications: retry in {wait:.0f} s",
                            retry_after=max(1, math.ceil(wait * 1000)))
    ip = session.address if config.audit_ip else None
    row = (_now_ms(), actor, "auth_failed", target, detail, ip, 1)
    session.audit.record((session.address, "auth_failed", kind), row)


def _log_failure(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("audit row not written: %s", fut.exception())


def disconnect(session: Session, reason: str) -> None:
    """Close a connection from the relay's side (policy violation) without waiting."""
    session.spawn(session.ws.close(1008, reason))


def register_invited(session: Session, frame: Register, handle: str) -> Later:
    """Register on an invite-only relay: the invite is checked and used up in the same
    transaction as the handle is bound; nothing changes if either is refused."""
    user = check_authenticated(session)
    code, sig = frame.invite.strip(), frame.sig

    async def write(db: aiosqlite.Connection) -> tuple[str, bytes, bytes]:
        rows = list(await db.execute_fetchall(
            "SELECT handle, user, sig FROM handles WHERE handle = ? OR user = ?",
            (handle, user)))
        mine = next((r for r in rows if r[1] == user), None)
        if mine is not None and mine[0] == handle:
            return (mine[0], mine[1], mine[2])  # registering again: nothing to use up
        if mine is not None:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"this identity already holds @{mine[0]}")
        if rows:
            raise ProtocolError(ErrorCode.HANDLE_TAKEN, f"@{handle} is taken")
        if not code:
            raise ProtocolError(ErrorCode.INVITE_REQUIRED,
                                "this relay is invite-only: register with an invite code")
        now = _now_ms()
        found = list(await db.execute_fetchall(
            "SELECT used_by, expires_at FROM invites WHERE code = ?", (code,)))
        if not found or found[0][0] is not None or (found[0][1] and found[0][1] <= now):
            raise ProtocolError(ErrorCode.BAD_INVITE, "the invite code is unknown, used or expired")
        await db.execute("UPDATE invites SET used_by = ?, used_at = ? WHERE code = ?",
                         (user, now, code))
        await db.execute("INSERT INTO handles (handle, user, sig, at) VALUES (?, ?, ?, ?)",
                         (handle, user, sig, now))
        return (handle, user, sig)

    def answer(rec: tuple[str, bytes, bytes]) -> HandleInfo:
        session.handle = rec[0]
        session.role = role_of(session.config, user, rec[0])
        return HandleInfo(id=frame.id, handle=rec[0], user=rec[1], sig=rec[2])

    return Later(session.store.custom_write(write), answer)


@handles(Moderate)
async def moderate(session: Session, frame: Moderate) -> Answer:
    user = check_authenticated(session)
    needed = MODERATE_ACTIONS.get(frame.action)
    if needed is None:
        raise ProtocolError(ErrorCode.MALFORMED, f"unknown action {frame.action[:32]!r}; one of "
                            + ", ".join(MODERATE_ACTIONS))
    if ROLES.index(session.role) < ROLES.index(needed):
        record_audit(session, "refused:" + frame.action, frame.target, session.role)
        raise ProtocolError(ErrorCode.FORBIDDEN, f"{frame.action} needs the {needed} role")
    target, action, reason = frame.target, frame.action, frame.reason

    async def write(db: aiosqlite.Connection) -> None:
        if action in ("remove_post", "remove_comment"):
            steps = _REMOVE_POST if action == "remove_post" else _REMOVE_COMMENT
            for sql in steps:
                cur = await db.execute(sql, (target,))
            if not cur.rowcount:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"no {action[7:]} with this id")
        elif len(target) != 32:
            raise ProtocolError(ErrorCode.MALFORMED, "a ban names a 32-byte identity")
        elif action == "ban":
            await db.execute(_BAN, (target, _now_ms(), reason))
        else:
            cur = await db.execute(_UNBAN, (target,))
            if not cur.rowcount:
                raise ProtocolError(ErrorCode.NOT_FOUND, "this identity is not banned")
        ip = session.address if session.config.audit_ip else None
        await db.execute(_AUDIT, (_now_ms(), user, action, target, reason, ip))

    def answer(_: None) -> Ok:
        if action == "ban":
            session.hub.disconnect(target, "banned")  # on every node
        return Ok(id=frame.id)

    return Later(session.store.custom_write(write), answer)


# --- the command line: the data directory, directly ------------------------------------------


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
            db.execute(_AUDIT, (_now_ms(), None, action, target, detail, None))
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
        self._write([(_BAN, (user, _now_ms(), reason))], "ban", user, f"cli {reason}".strip())

    def unban(self, user: bytes) -> None:
        if not self._write([(_UNBAN, (user,))], "unban", user):
            raise AdminError("this identity is not banned")

    def remove_post(self, post: bytes) -> None:
        if not self._write([(sql, (post,)) for sql in _REMOVE_POST], "remove_post", post):
            raise AdminError("no post with this id")

    def remove_comment(self, comment: bytes) -> None:
        if not self._write([(_REMOVE_COMMENT[0], (comment,))], "remove_comment", comment):
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
