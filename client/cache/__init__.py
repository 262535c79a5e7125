"""The local cache: one SQLite file per identity (encrypted at rest with SQLCipher,
client/db.py; its key from the keystore's storage key), read and written through per-feature
repositories that share one connection and one transaction.

``async with cache.transaction():`` is the one unit of work (the home's lock held, one
commit at the end), then e.g. ``await cache.messages.add(row, shown=False)``.
Secrets (prekey private keys, ratchet sessions, sender keys, media and sticker keys) are
stored sealed with the keystore's storage key.

- store.py: :class:`Cache` (opening, the transaction, the commit, scrubbing)
- schema.py: the migrations and their atomic runner
- txn.py: the synchronous view for one-hand-off hot paths (session crypto, receive facts)
- one module per feature's tables, each with its named row types: settings, prekeys,
  sessions, contacts, messages (+ reactions, receipts, expiry), conversations, search,
  outbox, attachments, groups, audience (followers-only posts), stories, polls, stickers.
  The wallet's tables are client/wallet/store.py.
"""

from __future__ import annotations

from .attachments import AttachmentRow
from .contacts import KEY_CHANGED, KEY_CHANGED_VERIFIED, ContactRow
from .conversations import ConversationRow, LastMessage
from .groups import GroupStateRow, PendingEntry
from .messages import (
    DELIVERED,
    PENDING,
    READ,
    SENT,
    STATUS_BY_NAME,
    STATUS_NAMES,
    MessageRow,
    MsgRef,
    UnreadRow,
)
from .outbox import Deferred
from .polls import PollRow
from .prekeys import PrekeyAge, PrekeyPublic
from .repo import KeyRow
from .schema import MIGRATIONS
from .search import SearchHit, fts_query
from .sessions import SessionRow
from .stickers import PackRow
from .store import FILENAME, Cache, cache_key
from .stories import StoryRow, StoryView
from .txn import TargetRow, Txn

__all__ = [
    "Cache", "Txn", "FILENAME", "MIGRATIONS", "fts_query", "cache_key",
    "MessageRow", "ContactRow", "ConversationRow", "LastMessage", "PollRow", "AttachmentRow",
    "Deferred",
    "GroupStateRow", "PendingEntry", "KeyRow", "MsgRef", "PackRow", "PrekeyAge",
    "PrekeyPublic", "SearchHit", "SessionRow", "StoryRow", "StoryView", "TargetRow",
    "UnreadRow",
    "KEY_CHANGED", "KEY_CHANGED_VERIFIED", "STATUS_NAMES", "STATUS_BY_NAME", "PENDING",
    "SENT", "DELIVERED", "READ",
]
