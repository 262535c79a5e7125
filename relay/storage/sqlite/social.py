"""SQLite: the social layer — signed profiles, follows, posts, comments and reactions.

Every record was verified by the handler; the store keeps it as given and answers
pages of them. ``follows.state`` 0 is a request a private account has not approved.
"""

from __future__ import annotations

from typing import Any, Final

from tenchat.common.errors import ErrorCode, ProtocolError

from ..writer import write
from .base import SQLiteBase, Tx, marks

__all__ = ["Social"]

_FOLLOW_PAGES: Final = {
    "followers": "target = ? AND state = 1",
    "following": "follower = ? AND state = 1",
    "requests": "target = ? AND state = 0",
}
# Posts (and stories) of whom the caller follows, and the caller's own.
FOLLOWED: Final = ("(author IN (SELECT target FROM follows WHERE follower = ? AND state = 1)"
                   " OR author = ?)")


def authors_clause(caller: bytes, authors: list[bytes] | None) -> tuple[str, list[Any]] | None:
    """The WHERE part choosing ``authors`` (None: whom ``caller`` follows, and ``caller``);
    None if no author can match."""
    if authors is None:
        return FOLLOWED, [caller, caller]
    if not authors:
        return None
    return f"author IN ({marks(len(authors))})", list(authors)


class Social(SQLiteBase):
    async def profile(self, user: bytes) -> bytes | None:
        rows = await self._read("SELECT record FROM profiles WHERE user = ?", (user,))
        return bytes(rows[0][0]) if rows else None

    async def follow_page(
        self, user: bytes, kind: str, offset: int, limit: int
    ) -> list[tuple[bytes, bytes | None]]:
        rows = await self._read(
            f"SELECT record, approval FROM follows WHERE {_FOLLOW_PAGES[kind]}"
            " ORDER BY at, follower, target LIMIT ? OFFSET ?",
            (user, limit, offset),
        )
        return [(bytes(r), bytes(a) if a is not None else None) for r, a in rows]

    async def followers(self, user: bytes) -> list[bytes]:
        rows = await self._read(
            "SELECT follower FROM follows WHERE target = ? AND state = 1", (user,))
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
            cond = " AND seq < (SELECT seq FROM posts WHERE id = ?)"
            params.append(before)
        rows = await self._read(
            f"SELECT record FROM posts WHERE {who}{cond} ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        )
        return [bytes(r[0]) for r in rows]

    async def post_extras(self, posts: list[bytes]) -> list[tuple[int, dict[str, int]]]:
        if not posts:
            return []
        ids = marks(len(posts))
        counts = {bytes(p): n for p, n in await self._read(
            f"SELECT post, count(*) FROM comments WHERE post IN ({ids}) GROUP BY post",
            tuple(posts))}
        reactions: dict[bytes, dict[str, int]] = {}
        for p, emoji, n in await self._read(
                f"SELECT post, emoji, count(*) FROM reactions WHERE post IN ({ids})"
                " GROUP BY post, emoji", tuple(posts)):
            reactions.setdefault(bytes(p), {})[emoji] = n
        return [(counts.get(p, 0), reactions.get(p, {})) for p in posts]

    async def comment_page(self, post: bytes, before: bytes | None,
                           limit: int) -> list[bytes]:
        params: list[Any] = [post]
        cond = ""
        if before is not None:
            cond = " AND seq < (SELECT seq FROM comments WHERE id = ?)"
            params.append(before)
        rows = await self._read(
            f"SELECT record FROM comments WHERE post = ?{cond} ORDER BY seq DESC LIMIT ?",
            (*params, limit))
        return [bytes(r[0]) for r in rows]

    # --- writes -------------------------------------------------------------------------

    @write
    def set_profile(self, tx: Tx, user: bytes, record: bytes, updated_at: int,
                    private: bool) -> bytes:
        # Only a strictly newer record replaces the stored one (a replay of an old
        # record can't roll a profile back).
        tx.run_sql(
            "INSERT INTO profiles (user, record, updated_at, private) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (user) DO UPDATE SET record = excluded.record,"
            " updated_at = excluded.updated_at, private = excluded.private"
            " WHERE excluded.updated_at > profiles.updated_at",
            (user, record, updated_at, int(private)))
        return bytes(tx.one("SELECT record FROM profiles WHERE user = ?", (user,))[0])

    @write
    def follow(self, tx: Tx, follower: bytes, target: bytes, record: bytes) -> str:
        row = tx.one("SELECT state FROM follows WHERE follower = ? AND target = ?",
                     (follower, target))
        if row:  # already following, or already asked: unchanged
            return "following" if row[0] else "requested"
        row = tx.one("SELECT private FROM profiles WHERE user = ?", (target,))
        state = 0 if row and row[0] else 1
        tx.run_sql("INSERT INTO follows (follower, target, record, state, at)"
                   " VALUES (?, ?, ?, ?, ?)", (follower, target, record, state, self._clock()))
        return "following" if state else "requested"

    @write
    def approve(self, tx: Tx, owner: bytes, follower: bytes, record: bytes) -> None:
        if not tx.run_sql("UPDATE follows SET state = 1, approval = ?"
                          " WHERE follower = ? AND target = ? AND state = 0",
                          (record, follower, owner)):
            raise ProtocolError(ErrorCode.NOT_FOUND, "no pending request from this user")

    @write
    def unfollow(self, tx: Tx, follower: bytes, target: bytes) -> bool:
        return tx.run_sql("DELETE FROM follows WHERE follower = ? AND target = ?",
                          (follower, target)) > 0

    @write
    def put_post(self, tx: Tx, author: bytes, post: bytes, record: bytes, public: bool) -> None:
        if public:
            row = tx.one("SELECT private FROM profiles WHERE user = ?", (author,))
            if row and row[0]:
                raise ProtocolError(ErrorCode.FORBIDDEN,
                                    "a private account's posts are followers-only")
        put_once(tx, "posts", "INSERT OR IGNORE INTO posts (id, author, record)"
                  " VALUES (?, ?, ?)", (post, author, record), "post")

    @write
    def put_comment(self, tx: Tx, post: bytes, post_author: bytes, comment: bytes,
                    record: bytes) -> None:
        _check_post(tx, post, post_author)
        put_once(tx, "comments", "INSERT OR IGNORE INTO comments (id, post, record)"
                  " VALUES (?, ?, ?)", (comment, post, record), "comment")

    @write
    def put_reaction(self, tx: Tx, post: bytes, post_author: bytes, author: bytes, emoji: str,
                     created_at: int, removed: bool, record: bytes) -> None:
        _check_post(tx, post, post_author)
        key = (post, author, emoji)
        row = tx.one("SELECT created_at FROM reactions WHERE post = ? AND author = ?"
                     " AND emoji = ?", key)
        if row and row[0] > created_at:
            return  # a newer reaction (or removal) than this one is stored
        if removed:
            tx.run_sql("DELETE FROM reactions WHERE post = ? AND author = ? AND emoji = ?", key)
            return
        if not row and self.reactions_max and tx.one(
                "SELECT count(*) FROM reactions WHERE post = ? AND author = ?",
                (post, author))[0] >= self.reactions_max:
            raise ProtocolError(
                ErrorCode.TOO_MANY_REACTIONS,
                f"you have {self.reactions_max} reactions on this post, the most"
                " this relay keeps; remove one first")
        tx.run_sql("INSERT OR REPLACE INTO reactions (post, author, emoji, created_at, record)"
                   " VALUES (?, ?, ?, ?, ?)", (*key, created_at, record))


def put_once(tx: Tx, table: str, insert: str, row: tuple[Any, ...], what: str) -> bool:
    """Insert a record with a unique id (``row[0]``); idempotent for the same record,
    forbidden for another one with the same id. True if it was new."""
    if tx.run_sql(insert, row):
        return True
    stored = tx.one(f"SELECT record FROM {table} WHERE id = ?", (row[0],))
    if bytes(stored[0]) != row[-1]:
        raise ProtocolError(ErrorCode.FORBIDDEN, f"another {what} has this id")
    return False



def _check_post(tx: Tx, post: bytes, post_author: bytes) -> None:
    row = tx.one("SELECT author FROM posts WHERE id = ?", (post,))
    if not row or bytes(row[0]) != post_author:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such post by that author")
