"""Messages (1:1 and group) and what hangs on them: reactions, group read receipts,
edits, deletes, pins, disappearing-message expiry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .repo import Repo, marks

__all__ = ["Messages", "MessageRow", "MsgRef", "UnreadRow", "MSG_COLS", "M_COLS", "NCOLS",
           "message_row", "PENDING", "SENT", "DELIVERED", "READ", "STATUS_NAMES",
           "STATUS_BY_NAME"]

PENDING, SENT, DELIVERED, READ = 0, 1, 2, 3
STATUS_NAMES = {PENDING: "pending", SENT: "sent", DELIVERED: "delivered", READ: "read"}
STATUS_BY_NAME = {v: k for k, v in STATUS_NAMES.items()}


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: bytes
    peer: bytes
    outgoing: bool
    text: str
    sent_at: int
    received_at: int
    status: int
    key: int = 0  # local insertion order (the row id): pages and jumps use it
    sender: bytes | None = None  # group messages: the author (peer is the group id)
    reply_to: bytes | None = None
    edited: bool = False
    deleted: bool = False
    pinned: bool = False
    mention: bool = False  # mentions us by @handle
    expires_at: int = 0  # ms; 0 = never


class MsgRef(NamedTuple):
    """A message by its key in the cache."""

    conv: bytes
    id: bytes


class UnreadRow(NamedTuple):
    id: bytes
    sender: bytes | None  # the author in a group; None in 1:1


MSG_COLS = ("id, peer, outgoing, text, sent_at, received_at, status, rowid, sender, reply_to, "
            "edited, deleted, pinned, mention, expires_at")
NCOLS = MSG_COLS.count(",") + 1
M_COLS = ", ".join("m." + c for c in MSG_COLS.split(", "))  # the same, on alias ``m``


def message_row(row: Iterable) -> MessageRow:
    """The MessageRow of MSG_COLS' values."""
    r = tuple(row)
    return MessageRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                      bool(r[10]), bool(r[11]), bool(r[12]), bool(r[13]), r[14])


def _by(author: bytes | None, group: bool) -> tuple[str, tuple]:
    """SQL matching messages written by ``author`` (None: by us) in a conversation."""
    if author is None:
        return "outgoing=1", ()
    return ("outgoing=0 AND sender=?", (author,)) if group else ("outgoing=0", ())


class Messages(Repo):
    async def add(self, msg: MessageRow, *, shown: bool) -> bool:
        """Insert a message; False if one with the same id exists (a duplicate)."""
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO messages (id, peer, outgoing, text, sent_at, received_at, "
            "status, shown, sender, reply_to, mention, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (msg.id, msg.peer, int(msg.outgoing), msg.text, msg.sent_at, msg.received_at,
             msg.status, int(shown), msg.sender, msg.reply_to, int(msg.mention),
             msg.expires_at),
        )
        return cur.rowcount == 1

    async def add_stored(self, msg: MessageRow, *, shown: bool = False) -> MessageRow | None:
        """Insert a received message: the stored row (with its key), or None if one with
        the same id exists (a duplicate)."""
        if not await self.add(msg, shown=shown):
            return None
        return (await self.get(msg.peer, msg.id)) or msg

    async def insert_many(self, rows: list[MessageRow]) -> None:
        """Bulk insert (imports, benchmarks); duplicates are ignored."""
        await self._db.executemany(
            "INSERT OR IGNORE INTO messages (id, peer, outgoing, text, sent_at, received_at, "
            "status, shown) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            [(m.id, m.peer, int(m.outgoing), m.text, m.sent_at, m.received_at, m.status)
             for m in rows],
        )

    async def get(self, peer: bytes, msg_id: bytes) -> MessageRow | None:
        async with self._db.execute(
            f"SELECT {MSG_COLS} FROM messages WHERE peer=? AND id=?", (peer, msg_id)
        ) as cur:
            row = await cur.fetchone()
        return message_row(row) if row else None

    async def raise_status(self, peer: bytes, ids: list[bytes], status: int) -> list[bytes]:
        """Move our own messages to ``peer`` forward to ``status`` (never backwards).

        Only messages we sent to ``peer`` match, so a receipt from one peer can't
        touch a conversation with another. Returns the ids that changed.
        """
        if not ids:
            return []
        async with self._db.execute(
            f"UPDATE messages SET status=? WHERE outgoing=1 AND peer=? AND status<? "
            f"AND id IN ({marks(ids)}) RETURNING id",
            (status, peer, status, *ids),
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def history(self, peer: bytes, limit: int, *,
                      before: int | None = None) -> list[MessageRow]:
        """The latest ``limit`` messages with peer (older than key ``before``), oldest first.

        Ordered by arrival in this cache, which is the order the user saw them in.
        """
        bound = before if before is not None else 2**63 - 1
        async with self._db.execute(
            f"SELECT {MSG_COLS} FROM messages WHERE peer=? AND rowid<? "
            f"ORDER BY rowid DESC LIMIT ?",
            (peer, bound, limit),
        ) as cur:
            rows = [message_row(r) for r in await cur.fetchall()]
        rows.reverse()
        return rows

    async def after(self, peer: bytes, key: int, limit: int) -> list[MessageRow]:
        """Up to ``limit`` messages with peer from key ``key`` on (inclusive), oldest first."""
        async with self._db.execute(
            f"SELECT {MSG_COLS} FROM messages WHERE peer=? AND rowid>=? "
            f"ORDER BY rowid LIMIT ?",
            (peer, key, limit),
        ) as cur:
            return [message_row(r) for r in await cur.fetchall()]

    async def count(self, peer: bytes) -> int:
        async with self._db.execute("SELECT count(*) FROM messages WHERE peer=?", (peer,)) as cur:
            (n,) = await cur.fetchone()
        return int(n)

    async def unshown(self) -> list[MessageRow]:
        """Incoming messages not yet printed by `inbox`, oldest first."""
        async with self._db.execute(
            f"SELECT {MSG_COLS} FROM messages WHERE shown=0 AND outgoing=0 "
            f"ORDER BY received_at, rowid"
        ) as cur:
            return [message_row(r) for r in await cur.fetchall()]

    async def mark_shown(self, rows: list[MessageRow]) -> None:
        """These messages were printed (only these: one that arrived meanwhile was not)."""
        await self._db.executemany("UPDATE messages SET shown=1 WHERE peer=? AND id=?",
                                   [(m.peer, m.id) for m in rows])

    async def take_unshown(self) -> list[MessageRow]:
        """unshown(), marked shown at once: for a caller that can't lose them on the way."""
        rows = await self.unshown()
        await self.mark_shown(rows)
        return rows

    async def ids_with_prefix(self, peer: bytes, hex_prefix: str, limit: int = 2) -> list[bytes]:
        """Message ids of a conversation starting with ``hex_prefix`` (at most ``limit``)."""
        async with self._db.execute(
            "SELECT id FROM messages WHERE peer=? AND substr(hex(id), 1, ?)=? LIMIT ?",
            (peer, len(hex_prefix), hex_prefix.upper(), limit),
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def unread(self, peer: bytes) -> list[UnreadRow]:
        """Unread incoming messages of a conversation."""
        async with self._db.execute(
            "SELECT id, sender FROM messages WHERE peer=? AND outgoing=0 AND status<?",
            (peer, READ)
        ) as cur:
            return [UnreadRow(r[0], r[1]) for r in await cur.fetchall()]

    async def unread_ids(self, peer: bytes) -> list[bytes]:
        return [row.id for row in await self.unread(peer)]

    async def mark_read(self, peer: bytes, ids: list[bytes]) -> None:
        """Incoming messages were read here."""
        await self._db.executemany(
            # read in a UI counts as shown: `inbox` won't print it again
            "UPDATE messages SET status=?, shown=1 WHERE peer=? AND id=? AND outgoing=0",
            [(READ, peer, i) for i in ids],
        )

    # --- actions: edit, delete, pin, react ----------------------------------------------

    async def edit(self, conv: bytes, target: bytes, author: bytes | None, group: bool,
                   text: str, *, mention: bool = False) -> bool:
        """Replace the text of ``author``'s message (only theirs); False if none matched."""
        where, args = _by(author, group)
        cur = await self._db.execute(
            f"UPDATE messages SET text=?, edited=1, mention=? WHERE peer=? AND id=? "
            f"AND deleted=0 AND {where}", (text, int(mention), conv, target, *args))
        if cur.rowcount == 1:
            self._cache.scrub_after_commit()  # the old text goes
        return cur.rowcount == 1

    async def delete(self, conv: bytes, target: bytes, author: bytes | None,
                     group: bool) -> bool:
        where, args = _by(author, group)
        cur = await self._db.execute(
            f"UPDATE messages SET text='', deleted=1, reply_to=NULL WHERE peer=? AND id=? "
            f"AND {where}", (conv, target, *args))
        if cur.rowcount:
            self._cache.scrub_after_commit()
            await self._drop_extras(conv, target)
        return cur.rowcount == 1

    async def _drop_extras(self, conv: bytes, target: bytes) -> None:
        """What a deleted or expired message leaves: its reactions, its attachment's and
        sticker's keys."""
        await self._db.execute("DELETE FROM reactions WHERE conv=? AND target=?",
                               (conv, target))
        await self._cache.attachments.drop(conv, target)
        await self._cache.stickers.drop_msg(conv, target)

    async def purge_expired(self, now: int) -> list[MsgRef]:
        """Delete disappearing messages whose time is up."""
        async with self._db.execute(
            "DELETE FROM messages WHERE expires_at > 0 AND expires_at <= ? RETURNING peer, id",
            (now,)) as cur:
            gone = [MsgRef(r[0], r[1]) for r in await cur.fetchall()]
        if gone:
            self._cache.scrub_after_commit()
        for conv, target in gone:
            await self._drop_extras(conv, target)
        return gone

    async def set_pinned(self, conv: bytes, target: bytes, pinned: bool) -> bool:
        cur = await self._db.execute(
            "UPDATE messages SET pinned=? WHERE peer=? AND id=? AND deleted=0",
            (int(pinned), conv, target))
        return cur.rowcount == 1

    async def react(self, conv: bytes, target: bytes, reactor: bytes, emoji: str,
                    remove: bool) -> bool:
        if remove:
            cur = await self._db.execute(
                "DELETE FROM reactions WHERE conv=? AND target=? AND reactor=? AND emoji=?",
                (conv, target, reactor, emoji))
            return cur.rowcount == 1
        if await self.get(conv, target) is None:
            return False  # no reactions to messages we don't have (or that were deleted)
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO reactions VALUES (?, ?, ?, ?)", (conv, target, reactor, emoji))
        return cur.rowcount == 1

    async def reactions(self, conv: bytes, targets: list[bytes]) -> dict[bytes, dict[str, int]]:
        """Emoji counts per message: {msg id: {emoji: count}}."""
        if not targets:
            return {}
        async with self._db.execute(
            f"SELECT target, emoji, count(*) FROM reactions WHERE conv=? "
            f"AND target IN ({marks(targets)}) GROUP BY target, emoji ORDER BY min(rowid)",
            (conv, *targets)
        ) as cur:
            out: dict[bytes, dict[str, int]] = {}
            for target, emoji, n in await cur.fetchall():
                out.setdefault(target, {})[emoji] = n
        return out

    async def my_reactions(self, conv: bytes, me: bytes,
                           targets: list[bytes]) -> dict[bytes, set[str]]:
        """The emoji we ourselves put on each of these messages (to offer taking them back)."""
        if not targets:
            return {}
        async with self._db.execute(
            f"SELECT target, emoji FROM reactions WHERE conv=? AND reactor=? "
            f"AND target IN ({marks(targets)})", (conv, me, *targets)) as cur:
            out: dict[bytes, set[str]] = {}
            for target, emoji in await cur.fetchall():
                out.setdefault(target, set()).add(emoji)
        return out

    # --- group read receipts ------------------------------------------------------------

    async def record_receipts(self, conv: bytes, ids: list[bytes], reader: bytes,
                              status: int) -> None:
        await self._db.executemany(
            "INSERT INTO msg_receipts VALUES (?, ?, ?, ?) ON CONFLICT(conv, target, reader) "
            "DO UPDATE SET status=MAX(status, excluded.status)",
            [(conv, i, reader, status) for i in ids])

    async def seen_by(self, conv: bytes, target: bytes) -> int:
        """How many members have read our group message."""
        async with self._db.execute(
            "SELECT count(*) FROM msg_receipts WHERE conv=? AND target=? AND status>=?",
            (conv, target, READ)) as cur:
            (n,) = await cur.fetchone()
        return int(n)

    async def seen_by_many(self, conv: bytes, targets: list[bytes]) -> dict[bytes, int]:
        """``seen_by`` for many messages in one query."""
        if not targets:
            return {}
        async with self._db.execute(
            f"SELECT target, count(*) FROM msg_receipts WHERE conv=? AND status>=? "
            f"AND target IN ({marks(targets)}) GROUP BY target", (conv, READ, *targets)) as cur:
            return {r[0]: int(r[1]) for r in await cur.fetchall()}
