"""Polls (a poll is also a message: its id is the message id) and votes, kept as cast
(the latest per voter); common.polls decides what counts."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from .repo import Repo, marks

__all__ = ["Polls", "PollRow", "EARLY_CLOSE_KEPT_MS"]

# How long a poll_close that came before its poll is kept waiting for it (client/
# poll_rules.py KeepEarlyClose): a poll overtaken by its close arrives within moments; the
# bound keeps closes for polls that never come (or a peer's junk) from piling up.
EARLY_CLOSE_KEPT_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class PollRow:
    conv: bytes
    id: bytes
    creator: bytes
    question: str
    options: list[str]
    multiple: bool
    anonymous: bool
    closed: bool
    tally: list[int] | None  # anonymous polls: the creator's latest published counts
    tally_voters: int
    tally_at: int


class Polls(Repo):
    async def put(self, conv: bytes, poll_id: bytes, creator: bytes, question: str,
                  options: list[str], multiple: bool, anonymous: bool) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO polls (conv, id, creator, question, options, multiple, "
            "anonymous) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (conv, poll_id, creator, question, msgspec.msgpack.encode(options), int(multiple),
             int(anonymous)))

    async def get(self, conv: bytes, poll_id: bytes) -> PollRow | None:
        async with self._db.execute(
            "SELECT conv, id, creator, question, options, multiple, anonymous, closed, tally, "
            "tally_voters, tally_at FROM polls WHERE conv=? AND id=?", (conv, poll_id)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return PollRow(row[0], row[1], row[2], row[3], msgspec.msgpack.decode(row[4]),
                       bool(row[5]), bool(row[6]), bool(row[7]),
                       msgspec.msgpack.decode(row[8]) if row[8] is not None else None,
                       int(row[9]), int(row[10]))

    async def among(self, conv: bytes, ids: list[bytes]) -> set[bytes]:
        """Which of these message ids are polls."""
        if not ids:
            return set()
        async with self._db.execute(
            f"SELECT id FROM polls WHERE conv=? AND id IN ({marks(ids)})", (conv, *ids)) as cur:
            return {r[0] for r in await cur.fetchall()}

    async def close(self, conv: bytes, poll_id: bytes) -> bool:
        cur = await self._db.execute(
            "UPDATE polls SET closed=1 WHERE conv=? AND id=? AND closed=0", (conv, poll_id))
        return cur.rowcount == 1

    async def keep_early_close(self, conv: bytes, poll_id: bytes, author: bytes,
                               at: int) -> None:
        """A close by ``author`` of a poll not here yet; those older than
        EARLY_CLOSE_KEPT_MS are forgotten."""
        await self._db.execute(
            "INSERT OR IGNORE INTO poll_early_closes VALUES (?, ?, ?, ?)",
            (conv, poll_id, author, at))
        await self._db.execute("DELETE FROM poll_early_closes WHERE at<?",
                               (at - EARLY_CLOSE_KEPT_MS,))

    async def closed_early(self, conv: bytes, poll_id: bytes, author: bytes) -> bool:
        """Whether ``author`` closed this poll before it came."""
        async with self._db.execute(
            "SELECT 1 FROM poll_early_closes WHERE conv=? AND poll=? AND author=?",
            (conv, poll_id, author)) as cur:
            return await cur.fetchone() is not None

    async def forget_early_closes(self, conv: bytes, poll_id: bytes) -> None:
        """The poll came: the closes kept for it have done their part."""
        await self._db.execute("DELETE FROM poll_early_closes WHERE conv=? AND poll=?",
                               (conv, poll_id))

    async def put_tally(self, conv: bytes, poll_id: bytes, counts: list[int], voters: int,
                        at: int) -> bool:
        """Keep the creator's tally if it is not older than the one we have."""
        cur = await self._db.execute(
            "UPDATE polls SET tally=?, tally_voters=?, tally_at=? WHERE conv=? AND id=? "
            "AND tally_at<=?",
            (msgspec.msgpack.encode(counts), voters, at, conv, poll_id, at))
        return cur.rowcount == 1

    async def put_vote(self, conv: bytes, poll_id: bytes, voter: bytes, choices: list[int],
                       at: int) -> bool:
        """Store a voter's choices unless their stored vote is newer; True if stored."""
        cur = await self._db.execute(
            "INSERT INTO poll_votes VALUES (?, ?, ?, ?, ?) ON CONFLICT(conv, poll, voter) "
            "DO UPDATE SET choices=excluded.choices, at=excluded.at WHERE excluded.at>=at",
            (conv, poll_id, voter, msgspec.msgpack.encode(choices), at))
        return cur.rowcount == 1

    async def vote_at(self, conv: bytes, poll_id: bytes, voter: bytes) -> int | None:
        """When ``voter``'s stored vote was cast (None: no vote)."""
        async with self._db.execute(
            "SELECT at FROM poll_votes WHERE conv=? AND poll=? AND voter=?",
            (conv, poll_id, voter)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else None

    async def votes(self, conv: bytes, poll_id: bytes) -> dict[bytes, list[int]]:
        """Every voter's current choices, in the order they first voted."""
        async with self._db.execute(
            "SELECT voter, choices FROM poll_votes WHERE conv=? AND poll=? ORDER BY rowid",
            (conv, poll_id)) as cur:
            return {r[0]: msgspec.msgpack.decode(r[1]) for r in await cur.fetchall()}
