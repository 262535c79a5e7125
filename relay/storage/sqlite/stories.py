"""SQLite: stories — sealed, signed records that expire (24 h at most).

The sweep and every read go through the expires_at indexes; a story's image blob gets
the story's expiry and goes with the last story using it.
"""

from __future__ import annotations

from typing import Final

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.stories import STORY_TTL_MS

from ..records import SweptStories
from ..writer import write
from .base import SQLiteBase, Tx
from .social import authors_clause, put_once

__all__ = ["Stories", "STORY_CLOCK_SLACK_MS"]

STORY_CLOCK_SLACK_MS: Final = 10 * 60 * 1000  # how far ahead of ours an author's clock may be


class Stories(SQLiteBase):
    async def story_page(self, caller: bytes, authors: list[bytes] | None,
                         limit: int) -> list[bytes]:
        chosen = authors_clause(caller, authors)
        if chosen is None:
            return []
        who, params = chosen
        # Never an expired story, even before the sweep has deleted it.
        rows = await self._read(
            f"SELECT record FROM stories WHERE {who} AND expires_at > ?"
            " ORDER BY seq DESC LIMIT ?",
            (*params, self._clock(), limit),
        )
        return [bytes(r[0]) for r in rows]

    @write
    def put_story(self, tx: Tx, author: bytes, story: bytes, expires_at: int,
                  blob: bytes | None, record: bytes) -> bool:
        now = self._clock()
        if expires_at <= now:
            raise ProtocolError(ErrorCode.EXPIRED, "this story has already expired")
        if expires_at > now + STORY_TTL_MS + STORY_CLOCK_SLACK_MS:
            raise ProtocolError(ErrorCode.EXPIRED, "a story lives at most 24 hours")
        if blob is not None:
            row = tx.one("SELECT owner, expires_at FROM blobs WHERE hash = ?", (blob,))
            if not row or bytes(row[0]) != author or 0 < row[1] <= now:
                raise ProtocolError(ErrorCode.NOT_FOUND,
                                    "the story's image is not a blob you stored")
        new = put_once(tx, "stories", "INSERT OR IGNORE INTO stories (id, author, expires_at,"
                       " blob, record) VALUES (?, ?, ?, ?, ?)",
                       (story, author, expires_at, blob, record), "story")
        if new and blob is not None:
            # The image goes with the story (and with the last story using it).
            tx.run_sql("UPDATE blobs SET expires_at = max(expires_at, ?) WHERE hash = ?",
                       (expires_at, blob))
        return new

    @write
    def sweep_stories(self, tx: Tx, now: int, limit: int) -> SweptStories:
        # Both through the expires_at indexes: no table scan, at most `limit` rows each.
        n_stories = tx.run_sql("DELETE FROM stories WHERE seq IN (SELECT seq FROM stories"
                               " WHERE expires_at <= ? LIMIT ?)", (now, limit))
        rows = tx.all("DELETE FROM blobs WHERE hash IN (SELECT hash FROM blobs"
                      " WHERE expires_at > 0 AND expires_at <= ? LIMIT ?) RETURNING hash",
                      (now, limit))
        return SweptStories(n_stories, [bytes(r[0]) for r in rows])
