"""Relay operations: roles, bans, invite codes, quotas, moderation and the audit log.

Two ways in, one set of tables (store migration "operations"):

- over the protocol: a ``moderate`` frame from an identity with the admin or moderator
  role (``admins`` / ``moderators`` in the relay config) — removals of public posts and
  comments, bans; a ban made here disconnects the identity at once;
- ``tenchat-relay admin ...`` (relay/storage/admin.py), which opens the relay's
  database directly — its SQLite file (WAL; writes wait for the relay's writer with a
  busy timeout) or the PostgreSQL database its nodes share — also while the relay runs.
  A running relay (every node) finds bans made this way by polling the ``bans`` table
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
import time
from typing import TYPE_CHECKING, Any, Final

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import HandleInfo, Register

from .config import Config
from .session import Later, Session, check_authenticated
from .storage import AuditEntry, HandleRecord

if TYPE_CHECKING:
    from .storage import Store

__all__ = [
    "ROLES", "role_of", "record_audit", "register_invited",
    "disconnect", "AuditAggregator", "auth_failed",
]

log = logging.getLogger("tenchat.relay.admin")

ROLES: Final = ("user", "moderator", "admin")  # each may do what the ones before it may

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


def record_audit(session: Session, action: str, target: bytes | None, detail: str = "",
                 actor: bytes | None = None) -> asyncio.Future[Any]:
    """Queue an audit row; the client's address only if ``audit_ip`` is on."""
    fut = session.store.audit_insert(audit_entry(session, action, target, detail, actor))
    fut.add_done_callback(_log_failure)
    return fut


def audit_entry(session: Session, action: str, target: bytes | None, detail: str = "",
                 actor: bytes | None = None) -> AuditEntry:
    """An audit row of ``session``; the client's address only if ``audit_ip`` is on."""
    return AuditEntry(_now_ms(), actor if actor is not None else session.user, action, target,
                      detail, session.address if session.config.audit_ip else None)


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

    def record(self, key: tuple[str, str, str], row: AuditEntry) -> None:
        """``key``: (address, action, kind of failure)."""
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
    wait = session.guards.auth_failures.take(session.network)
    if wait:
        disconnect(session, "too many failed authentications from this address")
        raise ProtocolError(ErrorCode.RATE_LIMITED,
                            f"too many failed authentications: retry in {wait:.0f} s",
                            retry_after=max(1, math.ceil(wait * 1000)))
    ip = session.address if config.audit_ip else None
    row = AuditEntry(_now_ms(), actor, "auth_failed", target, detail, ip)
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
    code = frame.invite.strip()

    def answer(rec: HandleRecord) -> HandleInfo:
        session.handle = rec.handle
        session.role = role_of(session.config, user, rec.handle)
        return HandleInfo(id=frame.id, handle=rec.handle, user=rec.user, sig=rec.sig)

    return Later(session.store.register_invited(user, handle, frame.sig, code), answer)

