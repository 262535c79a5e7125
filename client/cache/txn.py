"""The cache inside :meth:`Cache.call` and :meth:`Cache.run`: synchronous, in the cache's
thread, so a whole hot path (the session crypto of a batch, the facts the receive rules
read first) costs one thread hand-off (client/session_crypto.py, client/receiving.py)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, NamedTuple

from .contacts import ContactRow, contact_row
from .repo import marks
from .sessions import SessionRow, update_session
from .settings import get_meta

if TYPE_CHECKING:
    from .store import Cache

__all__ = ["Txn", "TargetRow"]


class TargetRow(NamedTuple):
    """What the receive rules need of a message an action targets."""

    outgoing: bool
    sender: bytes | None
    deleted: bool


class Txn:
    def __init__(self, cache: Cache, conn: sqlite3.Connection) -> None:
        self._cache = cache
        self._conn = conn

    def get_meta(self, key: str) -> bytes | None:
        return get_meta(self._conn, key)

    def contact(self, user: bytes) -> ContactRow | None:
        return contact_row(self._conn, user)

    # --- sessions and prekeys (the session crypto) ---------------------------------------

    def sessions(self, peer: bytes) -> list[SessionRow]:
        """The peer's sessions, most recently used first."""
        rows = self._conn.execute(
            "SELECT id, state_sealed FROM sessions WHERE peer=? ORDER BY used_at DESC, id DESC",
            (peer,),
        ).fetchall()
        return [SessionRow(r[0], self._cache._open(r[1])) for r in rows]

    def save_session(self, peer: bytes, row_id: int | None, state: bytes, now: int, *,
                     keep: int = 3) -> int:
        """Store a session (a new one when ``row_id`` is None) as the peer's most recently
        used, keeping at most ``keep`` of the peer's sessions."""
        sealed = self._cache._seal(state)
        if row_id is not None:
            update_session(self._conn, row_id, sealed, now)
            return row_id
        cur = self._conn.execute(
            "INSERT INTO sessions (peer, state_sealed, used_at) VALUES (?, ?, MAX(?, "
            "COALESCE((SELECT MAX(used_at) FROM sessions WHERE peer=?), 0) + 1))",
            (peer, sealed, now, peer),
        )
        new_id = cur.lastrowid
        assert new_id is not None
        # Keep a few older sessions for messages still in flight under them.
        self._conn.execute(
            "DELETE FROM sessions WHERE peer=? AND id NOT IN (SELECT id FROM sessions "
            "WHERE peer=? ORDER BY used_at DESC, id DESC LIMIT ?)",
            (peer, peer, keep),
        )
        return new_id

    def update_session(self, row_id: int, state: bytes, now: int) -> None:
        update_session(self._conn, row_id, self._cache._seal(state), now)

    def delete_sessions(self, row_ids: list[int]) -> None:
        self._conn.executemany("DELETE FROM sessions WHERE id=?", [(r,) for r in row_ids])

    def prekey_privates(self, kind: str) -> dict[int, bytes]:
        rows = self._conn.execute(
            "SELECT key_id, private_sealed FROM prekeys WHERE kind=?", (kind,)).fetchall()
        return {r[0]: self._cache._open(r[1]) for r in rows}

    def delete_prekey(self, kind: str, key_id: int) -> None:
        self._conn.execute("DELETE FROM prekeys WHERE kind=? AND key_id=?", (kind, key_id))

    # --- what the receive rules read first (client/rules.py, Facts) ----------------------

    def target(self, conv: bytes, msg_id: bytes) -> TargetRow | None:
        """The message ``msg_id`` of ``conv``, if there is one."""
        row = self._conn.execute(
            "SELECT outgoing, sender, deleted FROM messages WHERE peer=? AND id=?",
            (conv, msg_id)).fetchone()
        return TargetRow(bool(row[0]), row[1], bool(row[2])) if row else None

    def reacted(self, conv: bytes, target: bytes, reactor: bytes, emoji: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM reactions WHERE conv=? AND target=? AND reactor=? AND emoji=?",
            (conv, target, reactor, emoji)).fetchone() is not None

    def outgoing_statuses(self, conv: bytes, ids: list[bytes]) -> dict[bytes, int]:
        """The statuses of our own messages in ``conv`` among ``ids``."""
        if not ids:
            return {}
        rows = self._conn.execute(
            f"SELECT id, status FROM messages WHERE outgoing=1 AND peer=? "
            f"AND id IN ({marks(ids)})", (conv, *ids)).fetchall()
        return {r[0]: r[1] for r in rows}
