"""PostgreSQL: which node runs the cluster's chores (the sweeps, retention, pruning).

The lead is a session advisory lock (``pg_try_advisory_lock``) held on a connection of
its own: PostgreSQL releases it when that session ends, so when the leading node dies
(its connection closes, or the server cuts it) another node takes the lead at its next
try — at most one chore interval later. Leading is about not doing the work N times,
not about correctness: every sweep deletes each row once even when two nodes run it at
once (upkeep.py), which can happen for a moment if the leader's session was cut and it
has not noticed yet.
"""

from __future__ import annotations

import logging
import zlib
from typing import Final

import asyncpg

from .base import PostgresBase

__all__ = ["Lead"]

log = logging.getLogger("tenchat.relay.storage")

_LEAD_LOCK: Final = 0x74656E63686C6561  # "tenchlea": the cluster's chores


class Lead(PostgresBase):
    _lead_conn: asyncpg.Connection | None = None
    _leading = False

    async def lead(self) -> bool:
        try:
            conn = self._lead_conn
            if conn is None or conn.is_closed():
                if self._leading:
                    log.warning("lost the cluster's lead (its database session ended)")
                self._leading = False
                self._lead_conn = conn = await asyncpg.connect(self.dsn)
            if self._leading:
                await conn.fetchval("SELECT 1")  # the session (and so the lock) is alive
            else:
                self._leading = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)",
                                                         self._lead_key()))
                if self._leading:
                    log.info("this node now runs the cluster's sweeps and retention")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if self._leading:
                log.warning("lost the cluster's lead (%s)", exc)
            await self._drop_lead()
        return self._leading

    def _lead_key(self) -> int:
        """One lock per store: stores in different schemas of a database lead apart."""
        return _LEAD_LOCK ^ zlib.crc32(self.schema.encode()) if self.schema else _LEAD_LOCK

    async def _drop_lead(self) -> None:
        conn, self._lead_conn, self._leading = self._lead_conn, None, False
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        await super().close()
        await self._drop_lead()  # (the lock goes with the session)
