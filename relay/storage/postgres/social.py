"""PostgreSQL: the social layer — signed profiles, follows, posts, comments and reactions.

Every record was verified by the handler; the store keeps it as given and answers pages
of them. ``follows.state`` 0 is a request a private account has not approved.
"""

from __future__ import annotations

from typing import Any, Final

from tenchat.common.errors import ErrorCode, ProtocolError

from .base import PostgresBase, Tx, write

__all__ = ["Social", "authors_clause", "put_once"]

_FOLLOW_PAGES: Final = {
    "followers": "target = $1 AND state = 1",
    "following": "follower = $1 AND state = 1",
    "requests": "target = $1 AND state = 0",
}


def authors_clause(caller: bytes, authors: list[bytes] | None) -> tuple[str, list[Any]] | None:
    """The WHERE part choosing ``authors`` (None: whom ``caller`` follows, and ``caller``)
    as parameter $1; None if no author can match."""
    if authors is None:
        return ("(author IN (SELECT target FROM follows WHERE follower = $1 AND state = 1)"
                " OR author = $1)"), [caller]
    if not authors:
        return None
    return "author = ANY($1::bytea[])", [list(authors)]


class Social(PostgresBase):
    async def profile(self, user: bytes) -> bytes | None:
        record = await self._read_value("SELECT record FROM profiles WHERE user_id = $1", user)
        return None if record is None else bytes(record)

    async def follow_page(
        self, user: bytes, kind: str, offset: int, limit: int
    ) -> list[tuple[bytes, bytes | None]]:
        rows = await self._read(
            f"SELECT record, approval FROM follows WHERE {_FOLLOW_PAGES[kind]}"
            " ORDER BY at, follower, target LIMIT $2 OFFSET $3", user, limit, offset)
        return [(bytes(r), bytes(a) if a is not None else None) for r, a in rows]

    async def followers(self, user: bytes) -> list[bytes]:
        rows = await self._read(
            "SELECT follower FROM follows WHERE target = $1 AND state = 1", user)
        return [bytes(r[0]) for r in rows]

    async def feed_page(
        self, caller: bytes, authors: list[bytes] | None, before: bytes | None, limit: int
    ) -> list[bytes]:
        chosen = authors_clause(caller, authors)
        if chosen is None:
            return []
        who, params = chosen
        cond = ""
        if before is not None:
            # an unknown id yields no rows (the comparison with NULL is never true)
            params.append(before)
            cond = f" AND seq < (SELECT seq FROM posts WHERE id = ${len(params)})"
        rows = await self._read(
            f"SELECT record FROM posts WHERE {who}{cond} ORDER BY seq DESC"
            f" LIMIT ${len(params) + 1}", *params, limit)
        return [bytes(r[0]) for r in rows]

    async def post_extras(self, posts: list[bytes]) -> list[tuple[int, dict[str, int]]]:
        if not posts:
            return []
        counts = {bytes(p): n for p, n in await self._read(
            "SELECT post, count(*) FROM comments WHERE post = ANY($1::bytea[])"
            " GROUP BY post", posts)}
        reactions: dict[bytes, dict[str, int]] = {}
        for p, emoji, n in await self._read(
                "SELECT post, emoji, count(*) FROM reactions WHERE post = ANY($1::bytea[])"
                " GROUP BY post, emoji", posts):
            reactions.setdefault(bytes(p), {})[emoji] = n
        return [(counts.get(p, 0), reactions.get(p, {})) for p in posts]

    async def comment_page(self, post: bytes, before: bytes | None,
                           limit: int) -> list[bytes]:
        if before is None:
            rows = await self._read("SELECT record FROM comments WHERE post = $1"
                                    " ORDER BY seq DESC LIMIT $2", post, limit)
        else:
            rows = await self._read(
                "SELECT record FROM comments WHERE post = $1 AND seq < (SELECT seq FROM"
                " comments WHERE id = $2) ORDER BY seq DESC LIMIT $3", post, before, limit)
        return [bytes(r[0]) for r in rows]

    # --- writes -------------------------------------------------------------------------

    @write
    async def set_profile(self, tx: Tx, user: bytes, record: bytes, updated_at: int,
                          private: bool) -> bytes:
        # Only a strictly newer record replaces the stored one (a replay of an old
        # record can't roll a profile back).
        await tx.run_sql(
            "INSERT INTO profiles (user_id, record, updated_at, private)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET"
            " record = excluded.record, updated_at = excluded.updated_at,"
            " private = excluded.private WHERE excluded.updated_at > profiles.updated_at",
            user, record, updated_at, private)
        return bytes(await tx.value("SELECT record FROM profiles WHERE user_id = $1", user))

    @write
    async def follow(self, tx: Tx, follower: bytes, target: bytes, record: bytes) -> str:
        state = await tx.value("SELECT state FROM follows WHERE follower = $1"
                               " AND target = $2", follower, target)
        if state is not None:  # already following, or already asked: unchanged
            return "following" if state else "requested"
        private = await tx.value("SELECT private FROM profiles WHERE user_id = $1", target)
        state = 0 if private else 1
        await tx.run_sql("INSERT INTO follows (follower, target, record, state, at)"
                         " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                         follower, target, record, state, self._clock())
        return "following" if state else "requested"

    @write
    async def approve(self, tx: Tx, owner: bytes, follower: bytes, record: bytes) -> None:
        if not await tx.run_sql("UPDATE follows SET state = 1, approval = $1"
                                " WHERE follower = $2 AND target = $3 AND state = 0",
                                record, follower, owner):
            raise ProtocolError(ErrorCode.NOT_FOUND, "no pending request from this user")

    @write
    async def unfollow(self, tx: Tx, follower: bytes, target: bytes) -> bool:
        return await tx.run_sql("DELETE FROM follows WHERE follower = $1 AND target = $2",
                                follower, target) > 0

    @write
    async def put_post(self, tx: Tx, author: bytes, post: bytes, record: bytes,
                       public: bool) -> None:
        if public and await tx.value("SELECT private FROM profiles WHERE user_id = $1", author):
            raise ProtocolError(ErrorCode.FORBIDDEN,
                                "a private account's posts are followers-only")
        await put_once(tx, "posts", "INSERT INTO posts (id, author, record) VALUES ($1, $2, $3)"
                       " ON CONFLICT DO NOTHING", (post, author, record), "post")

    @write
    async def put_comment(self, tx: Tx, post: bytes, post_author: bytes, comment: bytes,
                          record: bytes) -> None:
        await _check_post(tx, post, post_author)
        await put_once(tx, "comments", "INSERT INTO comments (id, post, record)"
                       " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                       (comment, post, record), "comment")

    @write
    async def put_reaction(self, tx: Tx, post: bytes, post_author: bytes, author: bytes,
                           emoji: str, created_at: int, removed: bool, record: bytes) -> None:
        await _check_post(tx, post, post_author)
        key = (post, author, emoji)
        stored_at = await tx.value("SELECT created_at FROM reactions WHERE post = $1"
                                   " AND author = $2 AND emoji = $3", *key)
        if stored_at is not None and stored_at > created_at:
            return  # a newer reaction (or removal) than this one is stored
        if removed:
            await tx.run_sql("DELETE FROM reactions WHERE post = $1 AND author = $2"
                             " AND emoji = $3", *key)
            return
        if stored_at is None and self.reactions_max and await tx.value(
                "SELECT count(*) FROM reactions WHERE post = $1 AND author = $2",
                post, author) >= self.reactions_max:
            raise ProtocolError(
                ErrorCode.TOO_MANY_REACTIONS,
                f"you have {self.reactions_max} reactions on this post, the most"
                " this relay keeps; remove one first")
        await tx.run_sql(
            "INSERT INTO reactions (post, author, emoji, created_at, record)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (post, author, emoji) DO UPDATE SET"
            " created_at = excluded.created_at, record = excluded.record",
            *key, created_at, record)


async def put_once(tx: Tx, table: str, insert: str, row: tuple[Any, ...], what: str) -> bool:
    """Insert a record with a unique id (``row[0]``); idempotent for the same record,
    forbidden for another one with the same id. True if it was new."""
    if await tx.run_sql(insert, *row):
        return True
    stored = await tx.value(f"SELECT record FROM {table} WHERE id = $1", row[0])
    if bytes(stored) != row[-1]:
        raise ProtocolError(ErrorCode.FORBIDDEN, f"another {what} has this id")
    return False


async def _check_post(tx: Tx, post: bytes, post_author: bytes) -> None:
    author = await tx.value("SELECT author FROM posts WHERE id = $1", post)
    if author is None or bytes(author) != post_author:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such post by that author")
