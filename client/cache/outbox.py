"""The outbox table: what waits to reach the relay (encrypted envelopes, or content
sealed until a session exists). The rules deciding what to send are client/outbox.py."""

from __future__ import annotations

from typing import NamedTuple

from ..outbox import Item
from .messages import SENT
from .repo import Repo

__all__ = ["OutboxStore", "Deferred"]


class Deferred(NamedTuple):
    """Content queued before it could be encrypted."""

    msg_id: bytes
    peer: bytes
    content: bytes


class OutboxStore(Repo):
    async def add(self, msg_id: bytes, peer: bytes, envelope: bytes, now: int, *,
                  kind: str = "direct", expires_at: int = 0) -> None:
        """Queue an encrypted envelope (``kind`` 'group': a group message; peer = group id)."""
        await self._db.execute(
            "INSERT OR IGNORE INTO outbox (msg_id, peer, envelope, created_at, kind, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (msg_id, peer, envelope, now, kind, expires_at),
        )

    async def defer(self, msg_id: bytes, peer: bytes, content: bytes, now: int, *,
                    expires_at: int = 0) -> None:
        """Queue content to encrypt later (no session yet, and maybe no relay to start one)."""
        await self._db.execute(
            "INSERT OR IGNORE INTO outbox (msg_id, peer, envelope, created_at, content_sealed, "
            "expires_at) VALUES (?, ?, x'', ?, ?, ?)",
            (msg_id, peer, now, self._seal(content), expires_at),
        )

    async def deferred(self) -> list[Deferred]:
        """Queued content not yet encrypted, oldest first."""
        async with self._db.execute(
            "SELECT msg_id, peer, content_sealed FROM outbox WHERE length(envelope)=0 "
            "ORDER BY created_at, rowid"
        ) as cur:
            return [Deferred(r[0], r[1], self._open(r[2])) for r in await cur.fetchall()]

    async def encrypted(self, msg_id: bytes, envelope: bytes) -> None:
        """A deferred item is encrypted now: it waits as an envelope."""
        await self._db.execute(
            "UPDATE outbox SET envelope=?, content_sealed=NULL WHERE msg_id=?", (envelope, msg_id)
        )

    async def items(self) -> list[Item]:
        """Encrypted outbox items, oldest first. ``written`` through the messages' primary
        key (peer, id): an ``id IN (…)`` alone has no index and scanned the whole cache
        on every flush (187 ms with a million cached messages)."""
        async with self._db.execute(
            "SELECT o.msg_id, o.peer, o.envelope, o.kind, o.expires_at, EXISTS("
            " SELECT 1 FROM messages m WHERE m.peer=o.peer AND m.id=o.msg_id AND m.outgoing)"
            " FROM outbox o WHERE length(o.envelope)>0 ORDER BY o.created_at, o.rowid"
        ) as cur:
            return [Item(r[0], r[1], r[2], r[3], r[4], bool(r[5]))
                    for r in await cur.fetchall()]

    async def done(self, msg_id: bytes, peer: bytes) -> bool:
        """The relay stored it: drop it from the outbox; True if a message became *sent*."""
        await self.drop(msg_id)
        cur = await self._db.execute(
            "UPDATE messages SET status=? WHERE peer=? AND id=? AND outgoing=1 AND status<?",
            (SENT, peer, msg_id, SENT),
        )
        return cur.rowcount == 1

    async def drop(self, msg_id: bytes) -> None:
        await self._db.execute("DELETE FROM outbox WHERE msg_id=?", (msg_id,))
