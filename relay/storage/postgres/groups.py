"""PostgreSQL: groups — signed changes, one log per group, a cursor per member.

A group's entries get their gseqs (from the ``group_seq`` sequence) while the writer
holds the group's ``groups`` row lock, which it keeps to the commit: so one group's
entries commit in gseq order whichever node writes them, and a member's cursor (a group
ack) never passes an entry that is still to commit (docs/design.md, "Scale-out").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tenchat.common import groups as gr
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import GroupDeliver, GroupSummary

from ..dedupe import dedupe_row
from ..records import GroupEntry, GroupHead, MembersChanged, Stored
from .base import PostgresBase, Tx, write

__all__ = ["Groups"]

_INSERT_LOG: Final = (
    "INSERT INTO group_log (gseq, grp, sender, msg, at, body, change, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
# The next gseq of a group (its row locked already, FOR UPDATE).
_NEXT_GSEQ: Final = (
    "UPDATE groups SET last_gseq = nextval('group_seq') WHERE id = $1 RETURNING last_gseq"
)
_NOT_MEMBER: Final = "not a member of this group"


class Groups(PostgresBase):
    async def member_groups(self, user: bytes) -> dict[bytes, int]:
        rows = await self._read("SELECT grp, cursor FROM group_members WHERE user_id = $1",
                                user)
        return {bytes(grp): cursor for grp, cursor in rows}

    async def group_summaries(self, user: bytes) -> list[GroupSummary]:
        rows = await self._read(
            "SELECT m.grp, g.version, m.role, m.cursor, g.last_gseq FROM group_members AS m"
            " JOIN groups AS g ON g.id = m.grp WHERE m.user_id = $1 ORDER BY m.grp", user)
        return [GroupSummary(bytes(grp), *rest) for grp, *rest in rows]

    async def group_head(self, group: bytes, user: bytes) -> GroupHead | None:
        rows = await self._read(
            "SELECT m.role, g.version FROM group_members AS m JOIN groups AS g ON g.id = m.grp"
            " WHERE m.grp = $1 AND m.user_id = $2", group, user)
        return GroupHead(*rows[0]) if rows else None

    async def group_records(self, group: bytes, after_version: int, limit: int) -> list[bytes]:
        rows = await self._read(
            "SELECT record FROM group_records WHERE grp = $1 AND version > $2"
            " ORDER BY version LIMIT $3", group, after_version, limit)
        return [bytes(record) for (record,) in rows]

    async def group_pending(
        self, group: bytes, user: bytes, after: int, limit: int
    ) -> list[GroupDeliver]:
        # One statement, so the membership check and the entries are one snapshot.
        rows = await self._read(
            "SELECT gseq, msg, sender, at, body, change FROM group_log"
            " WHERE grp = $1 AND gseq > $2 AND (expires_at = 0 OR expires_at > $3)"
            " AND EXISTS (SELECT 1 FROM group_members WHERE grp = $1 AND user_id = $4)"
            " ORDER BY gseq LIMIT $5", group, after, self._clock(), user, limit)
        return [GroupDeliver(group=group, gseq=q, msg=bytes(m), sender=bytes(f), at=a,
                             body=bytes(b), change=c) for q, m, f, a, b, c in rows]

    # --- writes -------------------------------------------------------------------------

    async def _roles(self, tx: Tx, group: bytes, users: Sequence[bytes]) -> dict[bytes, str]:
        """The roles of those of ``users`` that are members of ``group``."""
        rows = await tx.all("SELECT user_id, role FROM group_members WHERE grp = $1"
                            " AND user_id = ANY($2::bytea[])", group, list(users))
        return {bytes(user): role for user, role in rows}

    @write
    async def group_change(self, tx: Tx, change: gr.GroupChange, record: bytes) -> Stored:
        group = change.group
        # FOR UPDATE: the head can't move under this check (another node's change waits).
        row = await tx.one("SELECT version, head, last_gseq FROM groups WHERE id = $1"
                           " FOR UPDATE", group)
        version, head = (row[0], bytes(row[1])) if row else (0, gr.GENESIS)
        prev = row[2] if row else 0
        roles = await self._roles(tx, group, list({change.actor, *change.members}))
        if change.op != "create" and change.actor not in roles:
            # Non-members learn nothing, not even whether the group exists.
            raise ProtocolError(ErrorCode.FORBIDDEN, _NOT_MEMBER)
        effects = gr.check_change(change, version=version, head=head, roles=roles)
        new_head = gr.record_hash(record)
        at = self._clock()
        if change.op == "create":
            meta = effects.meta
            if await tx.run_sql(
                    "INSERT INTO groups (id, version, head, name, topic, avatar, announce)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    group, change.version, new_head, meta["name"], meta["topic"],
                    meta["avatar"], bool(meta["announce"])) == 0:
                # created meanwhile by another node: the same answer as a stale change
                raise ProtocolError(ErrorCode.PROTOCOL, "this group exists already")
        sets = ["version = $2", "head = $3"]
        values: list[Any] = [change.version, new_head]
        for key in ("name", "topic", "avatar", "announce"):
            if key in effects.meta and change.op != "create":
                values.append(bool(effects.meta[key]) if key == "announce"
                              else effects.meta[key])
                sets.append(f"{key} = ${len(values) + 1}")
        gseq = await tx.value(
            f"UPDATE groups SET {', '.join(sets)}, last_gseq = nextval('group_seq')"
            " WHERE id = $1 RETURNING last_gseq", group, *values)
        item = GroupDeliver(group=group, gseq=gseq, msg=new_head[:16], sender=change.actor,
                            at=at, body=record, change=True)
        cursor = gseq - 1  # a new member's first entry is the one that added them
        await tx.many("INSERT INTO group_members (grp, user_id, role, cursor)"
                      " VALUES ($1, $2, $3, $4)",
                      [(group, u, r, cursor) for u, r in effects.roles.items()
                       if r is not None and u not in roles])
        await tx.many("UPDATE group_members SET role = $1 WHERE grp = $2 AND user_id = $3",
                      [(r, group, u) for u, r in effects.roles.items()
                       if r is not None and u in roles])
        await tx.many("DELETE FROM group_members WHERE grp = $1 AND user_id = $2",
                      [(group, u) for u, r in effects.roles.items() if r is None])
        await tx.run_sql("INSERT INTO group_records (grp, version, record) VALUES ($1, $2, $3)",
                         group, change.version, record)
        await tx.run_sql(_INSERT_LOG, gseq, group, change.actor, item.msg, at, record, True, 0)
        membership = {u: r for u, r in effects.roles.items() if r is None or u not in roles}
        if membership:
            # Before the entry: an added member gets it, a removed one does not.
            tx.out.group_events.append(MembersChanged(group, membership, cursor))
        tx.out.group_events.append(GroupEntry(item, 0, prev))
        return Stored(gseq, at)

    @write
    async def group_post(
        self, tx: Tx, group: bytes, sender: bytes, msg_id: bytes, body: bytes, expires_at: int
    ) -> Stored:
        # the dedupe row names no sender: a digest of (sender, msg) (storage/dedupe.py)
        key = dedupe_row(sender, msg_id)
        row = await tx.one("SELECT gseq, at FROM group_sent WHERE grp = $1 AND sender = $2"
                           " AND msg = $3", group, *key)
        if row:  # a retry: the original answer
            return Stored(*row)
        # The group's row lock first (to the commit): a change removing the sender can't
        # commit between this check and the entry.
        head = await tx.one("SELECT announce, last_gseq FROM groups WHERE id = $1 FOR UPDATE",
                            group)
        announce, prev = head if head else (None, 0)
        role = await tx.value("SELECT role FROM group_members WHERE grp = $1"
                              " AND user_id = $2", group, sender)
        if announce is None or role is None:
            raise ProtocolError(ErrorCode.FORBIDDEN, _NOT_MEMBER)
        if not gr.can_post(role, announce):
            raise ProtocolError(ErrorCode.FORBIDDEN, "only admins may post here")
        gseq = await tx.value(_NEXT_GSEQ, group)
        at = self._clock()
        await tx.run_sql(_INSERT_LOG, gseq, group, sender, msg_id, at, body, False, expires_at)
        await tx.run_sql("INSERT INTO group_sent (grp, sender, msg, gseq, at)"
                         " VALUES ($1, $2, $3, $4, $5)", group, *key, gseq, at)
        item = GroupDeliver(group=group, gseq=gseq, msg=msg_id, sender=sender, at=at,
                            body=body, change=False)
        tx.out.group_events.append(GroupEntry(item, expires_at, prev))
        return Stored(gseq, at)

    @write
    async def group_ack(self, tx: Tx, user: bytes, group: bytes, upto: int) -> None:
        if not await tx.run_sql(
                "UPDATE group_members SET cursor = greatest(cursor,"
                " least($1, (SELECT last_gseq FROM groups WHERE id = $2)))"
                " WHERE grp = $2 AND user_id = $3", upto, group, user):
            raise ProtocolError(ErrorCode.FORBIDDEN, _NOT_MEMBER)

    @write
    async def bulk_add_members(
        self, tx: Tx, group: bytes, users: Sequence[bytes], role: str = gr.MEMBER
    ) -> int:
        """For benchmarks and imports only (as SQLiteStore.bulk_add_members): make
        ``users`` members of an existing group directly, without a signed record."""
        if role not in gr.ROLES:
            raise ProtocolError(ErrorCode.MALFORMED, f"unknown role {role!r}")
        cursor = await tx.value("SELECT last_gseq FROM groups WHERE id = $1", group)
        if cursor is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such group")
        added = await tx.run_sql(
            "INSERT INTO group_members (grp, user_id, role, cursor)"
            " SELECT $1, u, $2, $3 FROM unnest($4::bytea[]) AS u ON CONFLICT DO NOTHING",
            group, role, cursor, list(users))
        tx.out.group_events.append(MembersChanged(group, dict.fromkeys(users, role), cursor))
        return added
