"""Conversations (1:1 and group): the list's summary of each (its latest message and
unread count, kept by triggers in the same transaction as every message write), pin,
mute, the disappearing-message timer."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from .repo import Repo

__all__ = ["Conversations", "ConversationRow", "LastMessage", "SUMMARY_SCHEMA"]


class LastMessage(NamedTuple):
    """The latest message of a conversation, as the list previews it: the fields of
    MessageRow the list shows, by the same names (a tuple: 1,000 of them are cheap)."""

    id: bytes
    key: int  # its key in the cache (MessageRow.key)
    outgoing: bool
    text: str
    sent_at: int
    received_at: int
    status: int
    sender: bytes | None
    edited: bool
    deleted: bool


class ConversationRow(NamedTuple):
    peer: bytes
    handle: str | None
    unread: int
    pinned: bool
    muted: bool
    blocked: bool
    last: LastMessage | None
    timer: int = 0  # disappearing-message timer, seconds
    group_name: str | None = None  # set for group conversations
    verified: bool = False  # the peer's safety number was marked verified


# The summary's columns in `conversations`, in LastMessage's order, and the messages'
# columns they copy. One list, so the migration, the triggers and the reader agree.
_LAST = ("last_key", "last_id", "last_outgoing", "last_text", "last_sent_at",
         "last_received_at", "last_status", "last_sender", "last_edited", "last_deleted")
_FROM = ("rowid", "id", "outgoing", "text", "sent_at", "received_at", "status", "sender",
         "edited", "deleted")
_EMPTY = ("0", "NULL", "0", "''", "0", "0", "0", "NULL", "0", "0")
_SET_LAST = f"({', '.join(_LAST)})"
_LATEST = (f"(SELECT {', '.join('m.' + c for c in _FROM)} FROM messages m "
           f"WHERE m.peer = {{peer}} ORDER BY m.rowid DESC LIMIT 1)")


def _refill(peer: str, where: str) -> str:
    """SQL setting the summary of conversation ``peer`` (an SQL expression) to its latest
    message, or to none if it has none left, where ``where`` holds."""
    latest = _LATEST.format(peer=peer)
    return (
        f"UPDATE conversations SET {_SET_LAST} = {latest} WHERE {where} "
        f"AND EXISTS (SELECT 1 FROM messages m WHERE m.peer = {peer});\n"
        f"UPDATE conversations SET {_SET_LAST} = ({', '.join(_EMPTY)}) WHERE {where} "
        f"AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.peer = {peer});\n")


# The cache's migration 14 (client/cache/schema.py). Until 13 the list joined every
# conversation to its latest message and read all its columns: ~10 ms of SQL for 1,000
# conversations on a quiet machine (bench.notify). The summary is now copied into the
# conversation's row, and kept exact by the triggers: a new message becomes the latest;
# an edit, delete (a tombstone), status change of the latest is copied; when the latest
# is deleted outright (expiry) the one before it becomes the latest (none: the summary
# is emptied and the conversation sorts as one without messages). The fill recomputes
# unread too, so a count that drifted before is exact again.
SUMMARY_SCHEMA = f"""
    ALTER TABLE conversations ADD COLUMN last_id BLOB;      -- NULL: no message
    ALTER TABLE conversations ADD COLUMN last_outgoing INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN last_text TEXT NOT NULL DEFAULT '';
    ALTER TABLE conversations ADD COLUMN last_sent_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN last_received_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN last_status INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN last_sender BLOB;
    ALTER TABLE conversations ADD COLUMN last_edited INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE conversations ADD COLUMN last_deleted INTEGER NOT NULL DEFAULT 0;
    {_refill("conversations.peer", "1")}
    UPDATE conversations SET unread = (SELECT count(*) FROM messages m
        WHERE m.peer = conversations.peer AND m.outgoing = 0 AND m.status < 3);
    CREATE INDEX conversations_order ON conversations(pinned DESC, last_key DESC);
    DROP TRIGGER messages_ai;
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO conversations (peer, unread, {', '.join(_LAST)})
            VALUES (new.peer, new.outgoing = 0 AND new.status < 3,
                    {', '.join('new.' + c for c in _FROM)})
            ON CONFLICT(peer) DO UPDATE SET unread = unread + excluded.unread,
                {', '.join(f'{c} = excluded.{c}' for c in _LAST)};
        INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
    END;
    CREATE TRIGGER messages_last AFTER UPDATE OF text, status, edited, deleted ON messages
        WHEN new.rowid = (SELECT last_key FROM conversations WHERE peer = new.peer) BEGIN
        UPDATE conversations SET last_text = new.text, last_status = new.status,
            last_edited = new.edited, last_deleted = new.deleted WHERE peer = new.peer;
    END;
    DROP TRIGGER messages_ad;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        UPDATE conversations SET unread = MAX(unread - (old.outgoing = 0 AND old.status < 3), 0)
            WHERE peer = old.peer;
        {_refill("old.peer", "peer = old.peer AND last_key = old.rowid")}
    END;
"""

# Flat columns, read into rows without a join to messages; the order matches the index.
_ALL = (
    f"SELECT c.peer, ct.handle, c.unread, c.pinned, c.muted, COALESCE(ct.blocked, 0), "
    f"c.timer, g.state, COALESCE(ct.verified, 0), {', '.join('c.' + c for c in _LAST)} "
    f"FROM conversations c "
    f"LEFT JOIN groups g ON g.id = c.peer "
    f"LEFT JOIN contacts ct ON ct.user = c.peer "
    f"ORDER BY c.pinned DESC, c.last_key DESC, ct.handle"
)


def _group_name(state: bytes | None) -> str | None:
    if state is None:
        return None
    name = msgspec.msgpack.decode(state).get("name")
    return name if isinstance(name, str) else ""


def _row(r: tuple) -> ConversationRow:
    last = None if r[10] is None else LastMessage(
        r[10], r[9], bool(r[11]), r[12], r[13], r[14], r[15], r[16], bool(r[17]), bool(r[18]))
    return ConversationRow(r[0], r[1], r[2], bool(r[3]), bool(r[4]), bool(r[5]), last, r[6],
                           _group_name(r[7]), bool(r[8]))


class Conversations(Repo):
    async def all(self, limit: int | None = None) -> list[ConversationRow]:
        """Pinned first, then by latest activity; the first ``limit`` (None: all)."""
        sql, args = (_ALL, ()) if limit is None else (_ALL + " LIMIT ?", (limit,))
        async with self._db.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [_row(r) for r in rows]

    async def ensure(self, peer: bytes) -> None:
        await self._db.execute("INSERT OR IGNORE INTO conversations (peer) VALUES (?)", (peer,))

    async def set_flag(self, peer: bytes, flag: str, value: bool) -> None:
        assert flag in ("pinned", "muted")
        await self.ensure(peer)
        await self._db.execute(f"UPDATE conversations SET {flag}=? WHERE peer=?",
                               (int(value), peer))

    async def timer(self, conv: bytes) -> int:
        """The disappearing-message timer, seconds (0: off)."""
        async with self._db.execute("SELECT timer FROM conversations WHERE peer=?",
                                    (conv,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def set_timer(self, conv: bytes, seconds: int) -> None:
        await self.ensure(conv)
        await self._db.execute("UPDATE conversations SET timer=? WHERE peer=?", (seconds, conv))
