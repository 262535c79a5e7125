"""Groups: the verified state and its records, sender keys (ours sealed, and other
members' chains), who has our current chain, and entries waiting for a sender key."""

from __future__ import annotations

from typing import NamedTuple

from .repo import Repo

__all__ = ["Groups", "GroupStateRow", "PendingEntry"]


class GroupStateRow(NamedTuple):
    state: bytes  # the verified GroupState, MessagePack
    my_key: bytes | None  # our sender key for the group, opened (None: make one)
    left: bool


class PendingEntry(NamedTuple):
    """A group entry that arrived before its sender's key."""

    gseq: int
    sender: bytes
    msg: bytes
    at: int
    body: bytes


def _chain(chain_id: int) -> bytes:
    return chain_id.to_bytes(4, "big")


class Groups(Repo):
    async def state(self, group: bytes) -> GroupStateRow | None:
        async with self._db.execute(
            "SELECT state, my_key_sealed, left FROM groups WHERE id=?", (group,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return GroupStateRow(row[0], self._open(row[1]) if row[1] else None, bool(row[2]))

    async def save(self, group: bytes, state: bytes, records: list[tuple[int, bytes]],
                   *, left: bool = False) -> None:
        """Store the group's state and new (version, record) pairs."""
        await self._db.execute(
            "INSERT INTO groups (id, state, left) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
            "SET state=excluded.state, left=excluded.left", (group, state, int(left)))
        await self._db.executemany("INSERT OR IGNORE INTO group_records VALUES (?, ?, ?)",
                                   [(group, v, r) for v, r in records])
        await self._cache.conversations.ensure(group)

    async def records(self, group: bytes) -> list[bytes]:
        async with self._db.execute(
            "SELECT record FROM group_records WHERE grp=? ORDER BY version", (group,)) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def ids(self) -> list[bytes]:
        async with self._db.execute("SELECT id FROM groups ORDER BY rowid") as cur:
            return [r[0] for r in await cur.fetchall()]

    async def mark_left(self, group: bytes) -> None:
        await self._db.execute("UPDATE groups SET left=1 WHERE id=?", (group,))

    async def set_my_sender_key(self, group: bytes, key: bytes | None) -> None:
        await self._db.execute("UPDATE groups SET my_key_sealed=? WHERE id=?",
                               (self._seal(key) if key is not None else None, group))
        if key is None:
            await self._db.execute("DELETE FROM sender_key_sent WHERE grp=?", (group,))

    async def sender_key_sent(self, group: bytes, chain_id: int) -> set[bytes]:
        async with self._db.execute(
            "SELECT user FROM sender_key_sent WHERE grp=? AND chain_id=?",
            (group, _chain(chain_id))) as cur:
            return {r[0] for r in await cur.fetchall()}

    async def mark_sender_key_sent(self, group: bytes, users: list[bytes], chain_id: int) -> None:
        await self._db.executemany(
            "INSERT OR REPLACE INTO sender_key_sent VALUES (?, ?, ?)",
            [(group, u, _chain(chain_id)) for u in users])

    async def put_sender_key(self, group: bytes, sender: bytes, chain_id: int,
                             state: bytes) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO sender_keys VALUES (?, ?, ?, ?)",
            (group, sender, _chain(chain_id), self._seal(state)))

    async def sender_key(self, group: bytes, sender: bytes, chain_id: int) -> bytes | None:
        async with self._db.execute(
            "SELECT state_sealed FROM sender_keys WHERE grp=? AND sender=? AND chain_id=?",
            (group, sender, _chain(chain_id))) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def add_pending(self, group: bytes, entry: PendingEntry) -> None:
        await self._db.execute("INSERT OR IGNORE INTO pending_group VALUES (?, ?, ?, ?, ?, ?)",
                               (group, *entry))

    async def take_pending(self, group: bytes, sender: bytes) -> list[PendingEntry]:
        """The entries of ``sender`` that waited for their key, in group order (removed)."""
        async with self._db.execute(
            "DELETE FROM pending_group WHERE grp=? AND sender=? "
            "RETURNING gseq, sender, msg, at, body", (group, sender)) as cur:
            rows = [PendingEntry(*r) for r in await cur.fetchall()]
        return sorted(rows)
