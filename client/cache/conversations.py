"""Conversations (1:1 and group): unread counts and latest message kept by triggers,
pin, mute, the disappearing-message timer."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from .messages import M_COLS, NCOLS, MessageRow, message_row
from .repo import Repo

__all__ = ["Conversations", "ConversationRow"]


@dataclass(frozen=True, slots=True)
class ConversationRow:
    peer: bytes
    handle: str | None
    unread: int
    pinned: bool
    muted: bool
    blocked: bool
    last: MessageRow | None
    timer: int = 0  # disappearing-message timer, seconds
    group_name: str | None = None  # set for group conversations
    verified: bool = False  # the peer's safety number was marked verified


def _group_name(state: bytes | None) -> str | None:
    if state is None:
        return None
    name = msgspec.msgpack.decode(state).get("name")
    return name if isinstance(name, str) else ""


class Conversations(Repo):
    async def all(self) -> list[ConversationRow]:
        """Pinned first, then by latest activity."""
        async with self._db.execute(
            f"SELECT c.peer, ct.handle, c.unread, c.pinned, c.muted, COALESCE(ct.blocked, 0), "
            f"c.timer, g.state, COALESCE(ct.verified, 0), {M_COLS} FROM conversations c "
            f"LEFT JOIN groups g ON g.id = c.peer "
            f"LEFT JOIN contacts ct ON ct.user = c.peer "
            f"LEFT JOIN messages m ON m.rowid = c.last_key "
            f"ORDER BY c.pinned DESC, c.last_key DESC, ct.handle"
        ) as cur:
            rows = await cur.fetchall()
        return [
            ConversationRow(r[0], r[1], r[2], bool(r[3]), bool(r[4]), bool(r[5]),
                            message_row(r[9:9 + NCOLS]) if r[9] is not None else None,
                            r[6], _group_name(r[7]), bool(r[8]))
            for r in rows
        ]

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
