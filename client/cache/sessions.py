"""Ratchet sessions with peers, sealed with the storage key. The session crypto reads and
writes them synchronously through :class:`~.txn.Txn`; these are the async doors."""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from .repo import Repo

__all__ = ["Sessions", "SessionRow", "update_session"]


class SessionRow(NamedTuple):
    id: int  # row id: which session to update
    state: bytes  # the serialised session, opened


def update_session(conn: sqlite3.Connection, row_id: int, sealed: bytes, now: int) -> None:
    # used_at orders a peer's sessions (the current one first): the one just used must sort
    # first even when another was used in the same millisecond.
    conn.execute(
        "UPDATE sessions SET state_sealed=?, used_at=MAX(?, COALESCE((SELECT MAX(o.used_at) "
        "FROM sessions o WHERE o.peer=sessions.peer AND o.id!=sessions.id), 0) + 1) "
        "WHERE id=?",
        (sealed, now, row_id))


class Sessions(Repo):
    async def of(self, peer: bytes) -> list[SessionRow]:
        """The peer's sessions, most recently used first."""
        return await self._cache.call(lambda tx: tx.sessions(peer))

    async def save(self, peer: bytes, row_id: int | None, state: bytes,
                   now: int, *, keep: int = 3) -> int:
        return await self._cache.call(
            lambda tx: tx.save_session(peer, row_id, state, now, keep=keep))

    async def delete(self, row_ids: list[int]) -> None:
        await self._cache.call(lambda tx: tx.delete_sessions(row_ids))
