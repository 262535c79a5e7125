"""SQLite: groups — signed changes, one log per group, a cursor per member.

A group's log entries are numbered by the writer (``gseq``, one sequence for every
group); ``groups.last_gseq`` is each log's end, which a member's cursor never passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tenchat.common import groups as gr
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import GroupDeliver, GroupSummary

from ..dedupe import dedupe_row
from ..records import GroupEntry, GroupHead, MembersChanged, Stored
from ..writer import write
from .base import SQLiteBase, Tx, chunks, marks

__all__ = ["Groups"]

_INSERT_LOG: Final = (
    "INSERT INTO group_log (gseq, grp, sender, msg, at, body, change, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_NOT_MEMBER: Final = "not a member of this group"


class Groups(SQLiteBase):
    async def member_groups(self, user: bytes) -> dict[bytes, int]:
        rows = await self._read("SELECT grp, cursor FROM group_members WHERE user = ?", (user,))
        return {grp: cursor for grp, cursor in rows}

    async def group_summaries(self, user: bytes) -> list[GroupSummary]:
        rows = await self._read(
            "SELECT m.grp, g.version, m.role, m.cursor, g.last_gseq FROM group_members AS m"
            " JOIN groups AS g ON g.id = m.grp WHERE m.user = ? ORDER BY m.grp",
            (user,),
        )
        return [GroupSummary(*row) for row in rows]

    async def group_head(self, group: bytes, user: bytes) -> GroupHead | None:
        rows = await self._read(
            "SELECT m.role, g.version FROM group_members AS m JOIN groups AS g ON g.id = m.grp"
            " WHERE m.grp = ? AND m.user = ?",
            (group, user),
        )
        return GroupHead(*rows[0]) if rows else None

    async def group_records(self, group: bytes, after_version: int, limit: int) -> list[bytes]:
        rows = await self._read(
            "SELECT record FROM group_records WHERE grp = ? AND version > ?"
            " ORDER BY version LIMIT ?",
            (group, after_version, limit),
        )
        return [record for (record,) in rows]

    async def group_pending(
        self, group: bytes, user: bytes, after: int, limit: int
    ) -> list[GroupDeliver]:
        # One statement, so the membership check and the entries are one snapshot: an
        # entry after the user's removal is never returned.
        rows = await self._read(
            "SELECT gseq, msg, sender, at, body, change FROM group_log"
            " WHERE grp = ? AND gseq > ? AND (expires_at = 0 OR expires_at > ?)"
            " AND EXISTS (SELECT 1 FROM group_members WHERE grp = ? AND user = ?)"
            " ORDER BY gseq LIMIT ?",
            (group, after, self._clock(), group, user, limit),
        )
        return [
            GroupDeliver(group=group, gseq=q, msg=m, sender=f, at=a, body=b, change=bool(c))
            for q, m, f, a, b, c in rows
        ]

    # --- writes -------------------------------------------------------------------------

    def _roles(self, tx: Tx, group: bytes, users: Sequence[bytes]) -> dict[bytes, str]:
        """The roles of those of ``users`` that are members of ``group`` (by primary key)."""
        roles: dict[bytes, str] = {}
        for chunk in chunks(list(users), 900):
            rows = tx.all(f"SELECT user, role FROM group_members WHERE grp = ? AND user IN"
                          f" ({marks(len(chunk))})", [group, *chunk])
            roles.update((user, role) for user, role in rows)
        return roles

    def _log_entry(
        self, group: bytes, sender: bytes, msg: bytes, body: bytes, change: bool,
        expires_at: int,
    ) -> tuple[GroupDeliver, tuple[Any, ...]]:
        self._next_gseq += 1
        item = GroupDeliver(group=group, gseq=self._next_gseq, msg=msg, sender=sender,
                            at=self._clock(), body=body, change=change)
        row = (item.gseq, group, sender, msg, item.at, body, int(change), expires_at)
        return item, row

    @write
    def group_change(self, tx: Tx, change: gr.GroupChange, record: bytes) -> Stored:
        group = change.group
        row = tx.one("SELECT version, head FROM groups WHERE id = ?", (group,))
        version, head = row if row else (0, gr.GENESIS)
        # Only the actor's and the targets' roles: never the whole membership.
        roles = self._roles(tx, group, list({change.actor, *change.members}))
        if change.op != "create" and change.actor not in roles:
            # Non-members learn nothing, not even whether the group exists.
            raise ProtocolError(ErrorCode.FORBIDDEN, _NOT_MEMBER)
        effects = gr.check_change(change, version=version, head=head, roles=roles)
        new_head = gr.record_hash(record)
        item, log_row = self._log_entry(group, change.actor, new_head[:16], record, True, 0)
        if change.op == "create":
            meta = effects.meta
            tx.run_sql(
                "INSERT INTO groups (id, version, head, name, topic, avatar, announce, last_gseq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (group, change.version, new_head, meta["name"], meta["topic"], meta["avatar"],
                 int(bool(meta["announce"])), item.gseq),
            )
        else:
            sets = ["version = ?", "head = ?", "last_gseq = ?"]
            values: list[Any] = [change.version, new_head, item.gseq]
            for key in ("name", "topic", "avatar", "announce"):
                if key in effects.meta:
                    sets.append(f"{key} = ?")
                    value = effects.meta[key]
                    values.append(int(bool(value)) if key == "announce" else value)
            tx.run_sql(f"UPDATE groups SET {', '.join(sets)} WHERE id = ?", (*values, group))
        cursor = item.gseq - 1  # a new member's first entry is the one that added them
        added = [(group, u, r, cursor) for u, r in effects.roles.items()
                 if r is not None and u not in roles]
        changed = [(r, group, u) for u, r in effects.roles.items()
                   if r is not None and u in roles]
        removed = [(group, u) for u, r in effects.roles.items() if r is None]
        db = tx.db
        db.executemany(
            "INSERT INTO group_members (grp, user, role, cursor) VALUES (?, ?, ?, ?)", added)
        db.executemany("UPDATE group_members SET role = ? WHERE grp = ? AND user = ?", changed)
        db.executemany("DELETE FROM group_members WHERE grp = ? AND user = ?", removed)
        tx.run_sql("INSERT INTO group_records (grp, version, record) VALUES (?, ?, ?)",
                   (group, change.version, record))
        tx.run_sql(_INSERT_LOG, log_row)
        membership = {u: r for u, r in effects.roles.items() if r is None or u not in roles}
        if membership:
            # Before the entry: an added member gets it, a removed one does not.
            tx.out.group_events.append(MembersChanged(group, membership, cursor))
        tx.out.group_events.append(GroupEntry(item, 0))
        return Stored(item.gseq, item.at)

    @write
    def group_post(
        self, tx: Tx, group: bytes, sender: bytes, msg_id: bytes, body: bytes, expires_at: int
    ) -> Stored:
        # the dedupe row names no sender: a digest of (sender, msg) (storage/dedupe.py)
        key = dedupe_row(sender, msg_id)
        row = tx.one("SELECT gseq, at FROM group_sent WHERE grp = ? AND sender = ? AND msg = ?",
                     (group, *key))
        if row:  # a retry: the original answer
            return Stored(*row)
        row = tx.one("SELECT m.role, g.announce FROM group_members AS m"
                     " JOIN groups AS g ON g.id = m.grp WHERE m.grp = ? AND m.user = ?",
                     (group, sender))
        if not row:
            raise ProtocolError(ErrorCode.FORBIDDEN, _NOT_MEMBER)
        role, announce = row
        if not gr.can_post(role, bool(announce)):
            raise ProtocolError(ErrorCode.FORBIDDEN, "only admins may post here")
        item, log_row = self._log_entry(group, sender, msg_id, body, False, expires_at)
        tx.run_sql(_INSERT_LOG, log_row)
        tx.run_sql("INSERT INTO group_sent (grp, sender, msg, gseq, at) VALUES (?, ?, ?, ?, ?)",
                   (group, *key, item.gseq, item.at))
        tx.run_sql("UPDATE groups SET last_gseq = ? WHERE id = ?", (item.gseq, group))
        tx.out.group_events.append(GroupEntry(item, expires_at))
        return Stored(item.gseq, item.at)

    @write
    def group_ack(self, tx: Tx, user: bytes, group: bytes, upto: int) -> None:
        if not tx.run_sql(
                "UPDATE group_members SET cursor = max(cursor,"
                " min(?, (SELECT last_gseq FROM groups WHERE id = ?)))"
                " WHERE grp = ? AND user = ?", (upto, group, group, user)):
            raise ProtocolError(ErrorCode.FORBIDDEN, _NOT_MEMBER)

    @write
    def bulk_add_members(
        self, tx: Tx, group: bytes, users: Sequence[bytes], role: str = gr.MEMBER
    ) -> int:
        """For benchmarks and imports only: make ``users`` members of an existing group
        directly (executemany in chunks, one transaction), without a signed record — so
        clients checking the chain will not see them. Users already members are left
        alone; each new member's cursor is the log's current end. The number added.
        ProtocolError(not_found) if the group does not exist."""
        if role not in gr.ROLES:
            raise ProtocolError(ErrorCode.MALFORMED, f"unknown role {role!r}")
        row = tx.one("SELECT last_gseq FROM groups WHERE id = ?", (group,))
        if not row:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such group")
        cursor = row[0]
        before = tx.db.total_changes
        for chunk in chunks(list(users), 10_000):
            tx.db.executemany(
                "INSERT OR IGNORE INTO group_members (grp, user, role, cursor)"
                " VALUES (?, ?, ?, ?)", [(group, user, role, cursor) for user in chunk])
        tx.out.group_events.append(MembersChanged(group, dict.fromkeys(users, role), cursor))
        return tx.db.total_changes - before
