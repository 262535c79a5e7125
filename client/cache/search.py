"""Full-text search over messages (the FTS5 index ``messages_fts``, kept by the triggers
of schema 2, with 2- and 3-letter prefix indexes since schema 10)."""

from __future__ import annotations

from typing import NamedTuple

from .messages import M_COLS, NCOLS, MessageRow, message_row
from .repo import Repo

__all__ = ["Search", "SearchHit", "fts_query"]


class SearchHit(NamedTuple):
    message: MessageRow
    snippet: str  # the text around the hits, with [ ] around each


def fts_query(text: str) -> str:
    """A user's words as an FTS5 query: every word must match, the last as a prefix
    (if it is longer than one letter).

    Each word is quoted, so FTS5 syntax in user input (AND, NEAR, *, ") is literal.
    """
    words = [w.replace('"', '""') for w in text.split()]
    if not words:
        return ""
    # A one-letter last word is a word, not a prefix: "a"* would match most of the
    # vocabulary (a merge of nearly the whole index, seconds over 1M messages).
    last = f'"{words[-1]}"' + ("*" if len(words[-1]) > 1 else "")
    return " ".join(f'"{w}"' for w in words[:-1]) + (" " if len(words) > 1 else "") + last


class Search(Repo):
    async def messages(self, text: str, peer: bytes | None, limit: int) -> list[SearchHit]:
        """Full-text matches (in ``peer``'s conversation, or all), newest first."""
        query = fts_query(text)
        if not query:
            return []
        where = "messages_fts MATCH ?" + (" AND m.peer=?" if peer is not None else "")
        args: tuple = (query, peer, limit) if peer is not None else (query, limit)
        async with self._db.execute(
            f"SELECT {M_COLS}, snippet(messages_fts, 0, '[', ']', '…', 12) "
            f"FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid "
            f"WHERE {where} ORDER BY messages_fts.rowid DESC LIMIT ?",  # FTS order: no sort
            args,
        ) as cur:
            return [SearchHit(message_row(r[:NCOLS]), r[NCOLS]) for r in await cur.fetchall()]
