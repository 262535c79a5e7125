"""The local cache: one SQLite file per identity (conversations, messages, outbox,
contacts, prekeys, sessions).

Secrets (prekey private keys, ratchet sessions) are stored sealed with the
keystore's storage key. Methods do not commit: a unit of work is
``async with cache.transaction():`` (the home's lock held, one commit at the end), so a
crash never leaves half of one.

Over 500 lines because every feature's tables are still here, in one class; the next
step (issue 15, "cache as per-feature repositories") moves each feature's queries and
row types next to it, as client/wallet/store.py already is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec
from nacl import secret

from ..common.crypto.primitives import hkdf_sha256
from .db import Database, connect, encrypt_in_place, operational_errors
from .homelock import HomeLock
from .outbox import Item

__all__ = ["Cache", "MessageRow", "ContactRow", "ConversationRow", "PollRow", "fts_query",
           "KEY_CHANGED", "KEY_CHANGED_VERIFIED", "STATUS_NAMES", "PENDING", "SENT", "DELIVERED",
           "READ", "cache_key"]

FILENAME = "cache.sqlite"

log = logging.getLogger("tenchat.client.cache")


def cache_key(storage_key: bytes) -> bytes:
    """The SQLCipher key of HOME/cache.sqlite, from the keystore's storage key (which the
    passphrase unlocks): the whole file, its search index and WAL are encrypted with it."""
    return hkdf_sha256(storage_key, salt=b"", info=b"tenchat/cache-key/v1", length=32)

PENDING, SENT, DELIVERED, READ = 0, 1, 2, 3
STATUS_NAMES = {PENDING: "pending", SENT: "sent", DELIVERED: "delivered", READ: "read"}
STATUS_BY_NAME = {v: k for k, v in STATUS_NAMES.items()}

# Each runs in one transaction with its user_version bump (_migrate_one): no BEGIN/COMMIT.
MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB);
    CREATE TABLE prekeys (
        kind TEXT NOT NULL,             -- 'spk' | 'otk'
        key_id INTEGER NOT NULL,
        public BLOB NOT NULL,
        private_sealed BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (kind, key_id)
    );
    CREATE TABLE contacts (
        user BLOB PRIMARY KEY,          -- Ed25519 identity key, pinned on first contact
        handle TEXT,
        added INTEGER NOT NULL DEFAULT 0,
        blocked INTEGER NOT NULL DEFAULT 0,
        verified INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX contacts_handle ON contacts(handle);
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        peer BLOB NOT NULL,
        state_sealed BLOB NOT NULL,
        used_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_peer ON sessions(peer, used_at);
    CREATE TABLE messages (
        id BLOB NOT NULL,               -- the client-made 16-byte message id
        peer BLOB NOT NULL,
        outgoing INTEGER NOT NULL,
        text TEXT NOT NULL,
        sent_at INTEGER NOT NULL,       -- sender's clock, ms
        received_at INTEGER NOT NULL,   -- our clock, ms (for outgoing: creation)
        status INTEGER NOT NULL,        -- outgoing: 0 pending .. 3 read; incoming: 2 new, 3 read
        shown INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (peer, id)          -- per peer: a hostile peer can't shadow another's ids
    );
    CREATE INDEX messages_peer ON messages(peer, sent_at, received_at);
    CREATE INDEX messages_unshown ON messages(shown) WHERE shown = 0;
    CREATE TABLE outbox (
        msg_id BLOB PRIMARY KEY,
        peer BLOB NOT NULL,
        envelope BLOB NOT NULL,         -- already encrypted: a retry resends the same bytes
        created_at INTEGER NOT NULL
    );
    """,
    # 2: conversations (unread, pin, mute) kept by triggers; FTS5 search; paging by key
    """
    CREATE INDEX messages_by_peer ON messages(peer);   -- rowid order within a peer
    CREATE TABLE conversations (
        peer BLOB PRIMARY KEY,
        pinned INTEGER NOT NULL DEFAULT 0,
        muted INTEGER NOT NULL DEFAULT 0,
        last_key INTEGER NOT NULL DEFAULT 0,  -- rowid of the latest message
        unread INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO conversations (peer, last_key, unread)
        SELECT peer, MAX(rowid), SUM(outgoing = 0 AND status < 3) FROM messages GROUP BY peer;
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        text, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
    );
    INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO conversations (peer, last_key, unread)
            VALUES (new.peer, new.rowid, new.outgoing = 0 AND new.status < 3)
            ON CONFLICT(peer) DO UPDATE SET last_key = excluded.last_key,
                                            unread = unread + excluded.unread;
        INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
    END;
    CREATE TRIGGER messages_read AFTER UPDATE OF status ON messages
        WHEN new.outgoing = 0 AND old.status < 3 AND new.status >= 3 BEGIN
        UPDATE conversations SET unread = MAX(unread - 1, 0) WHERE peer = new.peer;
    END;
    CREATE TRIGGER messages_text AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text);
    END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        UPDATE conversations SET unread = MAX(unread - (old.outgoing = 0 AND old.status < 3), 0)
            WHERE peer = old.peer;
    END;
    """,
    # 3: messages composed before a session exists wait in the outbox unencrypted (sealed)
    """
    ALTER TABLE outbox ADD COLUMN content_sealed BLOB;  -- set while envelope is empty
    """,
    # 4: groups, message actions (reply, react, edit, delete, pin), disappearing messages.
    # A group conversation's `peer` is the 16-byte group id; `sender` is the author.
    """
    ALTER TABLE messages ADD COLUMN sender BLOB;
    ALTER TABLE messages ADD COLUMN reply_to BLOB;
    ALTER TABLE messages ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN mention INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at > 0;
    CREATE TABLE reactions (
        conv BLOB NOT NULL, target BLOB NOT NULL, reactor BLOB NOT NULL, emoji TEXT NOT NULL,
        PRIMARY KEY (conv, target, reactor, emoji)
    );
    CREATE TABLE msg_receipts (
        conv BLOB NOT NULL, target BLOB NOT NULL, reader BLOB NOT NULL, status INTEGER NOT NULL,
        PRIMARY KEY (conv, target, reader)
    );
    ALTER TABLE conversations ADD COLUMN timer INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'direct';  -- or 'group'
    ALTER TABLE outbox ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE groups (
        id BLOB PRIMARY KEY,
        state BLOB NOT NULL,            -- the verified GroupState, MessagePack
        my_key_sealed BLOB,             -- our sender key for this group (None: make one)
        left INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE group_records (
        grp BLOB NOT NULL, version INTEGER NOT NULL, record BLOB NOT NULL,
        PRIMARY KEY (grp, version)
    );
    CREATE TABLE sender_keys (          -- other members' chains, by chain id
        grp BLOB NOT NULL, sender BLOB NOT NULL, chain_id BLOB NOT NULL,
        state_sealed BLOB NOT NULL, PRIMARY KEY (grp, sender, chain_id)
    );
    CREATE TABLE sender_key_sent (      -- who has our current chain
        grp BLOB NOT NULL, user BLOB NOT NULL, chain_id BLOB NOT NULL,
        PRIMARY KEY (grp, user)
    );
    CREATE TABLE pending_group (        -- entries waiting for their sender key
        grp BLOB NOT NULL, gseq INTEGER NOT NULL, sender BLOB NOT NULL, msg BLOB NOT NULL,
        at INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (grp, gseq)
    );
    """,
    # 5: attachments. The MediaRef holds the file's key, a secret: sealed like sessions.
    """
    CREATE TABLE attachments (
        conv BLOB NOT NULL, msg BLOB NOT NULL, ref_sealed BLOB NOT NULL,
        PRIMARY KEY (conv, msg)
    );
    """,
    # 6: audience keys (followers-only posts): ours (author = our id) and those our
    # followees sent us, sealed; audience_members: whom we sent our current key.
    """
    CREATE TABLE audience_keys (
        author BLOB NOT NULL, key_id INTEGER NOT NULL, key_sealed BLOB NOT NULL,
        created_at INTEGER NOT NULL, PRIMARY KEY (author, key_id)
    );
    CREATE TABLE audience_members (follower BLOB PRIMARY KEY, key_id INTEGER NOT NULL);
    """,
    # 7: stories. story_keys: close-friends keys, ours (author = our id) and those sent to
    # us, sealed; close_friends: our list, with the key id each was sent (NULL: none yet);
    # stories: verified records (still sealed under their audience key) until they expire;
    # story_views: view receipts on our stories.
    """
    CREATE TABLE story_keys (
        author BLOB NOT NULL, key_id INTEGER NOT NULL, key_sealed BLOB NOT NULL,
        created_at INTEGER NOT NULL, PRIMARY KEY (author, key_id)
    );
    CREATE TABLE close_friends (user BLOB PRIMARY KEY, key_id INTEGER);
    CREATE TABLE stories (
        id BLOB PRIMARY KEY, author BLOB NOT NULL, posted_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, record BLOB NOT NULL, seen INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX stories_expiry ON stories (expires_at);
    CREATE INDEX stories_by_author ON stories (author, posted_at);
    CREATE TABLE story_views (
        story BLOB NOT NULL, viewer BLOB NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (story, viewer)
    );
    """,
    # 8: polls and stickers. A poll is also a message (its id is the message id). Votes are
    # kept as cast (latest per voter); common.polls decides what counts. Sticker pack keys
    # and images are sealed like attachments' keys.
    """
    CREATE TABLE polls (
        conv BLOB NOT NULL, id BLOB NOT NULL, creator BLOB NOT NULL, question TEXT NOT NULL,
        options BLOB NOT NULL,          -- MessagePack list of the option texts
        multiple INTEGER NOT NULL, anonymous INTEGER NOT NULL,
        closed INTEGER NOT NULL DEFAULT 0,
        tally BLOB,                     -- anonymous polls: the creator's counts (MessagePack)
        tally_voters INTEGER NOT NULL DEFAULT 0, tally_at INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (conv, id)
    );
    CREATE TABLE poll_votes (
        conv BLOB NOT NULL, poll BLOB NOT NULL, voter BLOB NOT NULL,
        choices BLOB NOT NULL,          -- MessagePack list of 0-based option indexes
        at INTEGER NOT NULL, PRIMARY KEY (conv, poll, voter)
    );
    CREATE TABLE sticker_packs (
        manifest BLOB PRIMARY KEY,      -- blob id of the sealed manifest
        key_sealed BLOB NOT NULL, name TEXT NOT NULL,
        manifest_sealed BLOB NOT NULL,  -- the opened manifest (MessagePack), sealed
        installed INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL
    );
    CREATE TABLE sticker_images (hash BLOB PRIMARY KEY, data_sealed BLOB NOT NULL);
    CREATE TABLE sticker_msgs (
        conv BLOB NOT NULL, msg BLOB NOT NULL, ref_sealed BLOB NOT NULL,  -- Sticker content
        PRIMARY KEY (conv, msg)
    );
    """,
    # wallets: keys (sealed like sessions), cached balances, gifts tracked from the chain,
    # NFT avatars seen, and contract-hook cursors.
    """
    CREATE TABLE wallet_keys (
        address TEXT PRIMARY KEY,       -- EIP-55
        key_sealed BLOB NOT NULL,       -- the secp256k1 private key, sealed
        created_at INTEGER NOT NULL
    );
    CREATE TABLE wallet_balances (
        chain_id INTEGER NOT NULL,
        address TEXT NOT NULL,
        token TEXT NOT NULL,            -- '' for the chain's native coin, else the contract
        symbol TEXT NOT NULL,
        decimals INTEGER NOT NULL,
        amount TEXT NOT NULL,           -- base units, decimal
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (chain_id, address, token)
    );
    CREATE TABLE gifts (
        chain_id INTEGER NOT NULL,
        tx_hash BLOB NOT NULL,
        peer BLOB NOT NULL,
        outgoing INTEGER NOT NULL,
        msg_id BLOB NOT NULL,
        status TEXT NOT NULL,           -- pending | confirmed | failed
        token TEXT NOT NULL DEFAULT '', -- from the chain once confirmed ('' native)
        symbol TEXT NOT NULL DEFAULT '',
        decimals INTEGER NOT NULL DEFAULT 18,
        amount TEXT NOT NULL DEFAULT '', -- base units, from the receipt and logs
        sender TEXT NOT NULL DEFAULT '',
        recipient TEXT NOT NULL DEFAULT '',
        block INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (chain_id, tx_hash)
    );
    CREATE TABLE watch_cursors (
        chain_id INTEGER NOT NULL,
        contract TEXT NOT NULL,
        event TEXT NOT NULL,
        grp BLOB NOT NULL,
        next_block INTEGER NOT NULL,    -- the first block not yet posted
        PRIMARY KEY (chain_id, contract, event, grp)
    );
    """,
    # 10: search. The last word of a search is a prefix; FTS5 answers a prefix query by
    # merging the whole doclist of every matching term first (~50 ms for a common word
    # over 1M messages, ~140 ms for a 3-letter prefix). Prefix indexes of 2 and 3 letters
    # (+~50% index) make those single look-ups, read newest first (bench.client).
    # The triggers name the table, so they keep working with the new one.
    """
    DROP TABLE messages_fts;
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        text, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2',
        prefix='2 3'
    );
    INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
    """,
    # 11: identity key changes. When a handle turns out to belong to a new identity key,
    # the handle moves to the new key's row, which remembers the key it replaced and
    # whether that one was verified (key_change 2: nothing is sent to the new key until
    # the user accepts it; 1: informational).
    """
    ALTER TABLE contacts ADD COLUMN previous_key BLOB;
    ALTER TABLE contacts ADD COLUMN key_change INTEGER NOT NULL DEFAULT 0;
    """,
    # 12: a key change is PENDING until the user accepts it (security review H1): the
    # handle stays with the key it was pinned to, the new key's row has no handle and
    # points at the old one (previous_key). Rows moved by schema 11 go back: the handle
    # returns to the old key and the move becomes a pending change again.
    """
    CREATE TEMP TABLE moved AS SELECT user, handle, previous_key FROM contacts
        WHERE key_change != 0 AND handle IS NOT NULL AND previous_key IS NOT NULL
        AND previous_key IN (SELECT user FROM contacts WHERE handle IS NULL);
    UPDATE contacts SET handle=NULL WHERE user IN (SELECT user FROM moved);
    UPDATE contacts SET handle=(SELECT m.handle FROM moved m
        WHERE m.previous_key=contacts.user) WHERE user IN (SELECT previous_key FROM moved);
    UPDATE contacts SET key_change=0 WHERE key_change != 0 AND (previous_key IS NULL
        OR previous_key NOT IN (SELECT user FROM contacts WHERE handle IS NOT NULL));
    DROP TABLE moved;
    """,
]

KEY_CHANGED, KEY_CHANGED_VERIFIED = 1, 2  # contacts.key_change


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


@dataclass(frozen=True, slots=True)
class ContactRow:
    user: bytes
    handle: str | None
    added: bool
    blocked: bool
    verified: bool
    # A pending identity key change: the relay says this key now holds the handle of
    # previous_key (``claimed``), which keeps it until the user accepts this key.
    # 0 no, KEY_CHANGED, or KEY_CHANGED_VERIFIED (the old key was verified).
    key_change: int = 0
    previous_key: bytes | None = None
    claimed: str | None = None  # the previous key's handle, while the change is pending

    @property
    def needs_acceptance(self) -> bool:
        """Nothing is sent to this key until the user accepts it (any pending change)."""
        return self.key_change != 0


_MSG_COLS = ("id, peer, outgoing, text, sent_at, received_at, status, rowid, sender, reply_to, "
             "edited, deleted, pinned, mention, expires_at")
_NCOLS = _MSG_COLS.count(",") + 1
_M_COLS = ", ".join("m." + c for c in _MSG_COLS.split(", "))


def _msg(row: Iterable) -> MessageRow:
    r = tuple(row)
    return MessageRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                      bool(r[10]), bool(r[11]), bool(r[12]), bool(r[13]), r[14])


def _group_name(state: bytes | None) -> str | None:
    if state is None:
        return None
    name = msgspec.msgpack.decode(state).get("name")
    return name if isinstance(name, str) else ""


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


_CONTACT_COLS = ("user, handle, added, blocked, verified, key_change, previous_key, "
                 "(SELECT o.handle FROM contacts o WHERE o.user=contacts.previous_key "
                 "AND contacts.key_change != 0)")


def _contact(row: Iterable) -> ContactRow:
    r = tuple(row)
    return ContactRow(r[0], r[1], bool(r[2]), bool(r[3]), bool(r[4]), r[5], r[6], r[7])


T = TypeVar("T")


def _get_meta(conn: sqlite3.Connection, key: str) -> bytes | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


def _update_session(conn: sqlite3.Connection, row_id: int, sealed: bytes, now: int) -> None:
    # used_at orders a peer's sessions (the current one first): the one just used must sort
    # first even when another was used in the same millisecond.
    conn.execute(
        "UPDATE sessions SET state_sealed=?, used_at=MAX(?, COALESCE((SELECT MAX(o.used_at) "
        "FROM sessions o WHERE o.peer=sessions.peer AND o.id!=sessions.id), 0) + 1) "
        "WHERE id=?",
        (sealed, now, row_id))


def _contact_row(conn: sqlite3.Connection, user: bytes) -> ContactRow | None:
    row = conn.execute(
        f"SELECT {_CONTACT_COLS} FROM contacts WHERE user=?", (user,)
    ).fetchone()
    return _contact(row) if row else None


def _migrate_one(conn: sqlite3.Connection, script: str, number: int) -> None:
    # executescript() commits whatever is open first, then runs the script as written:
    # the BEGIN and COMMIT here make the script and the version bump one transaction.
    try:
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


class Txn:
    """The cache inside :meth:`Cache.call` and :meth:`Cache.run`: synchronous, in the
    cache's thread (for the session crypto: client/session_crypto.py)."""

    def __init__(self, cache: Cache, conn: sqlite3.Connection) -> None:
        self._cache = cache
        self._conn = conn

    def get_meta(self, key: str) -> bytes | None:
        return _get_meta(self._conn, key)

    def contact(self, user: bytes) -> ContactRow | None:
        return _contact_row(self._conn, user)

    def sessions(self, peer: bytes) -> list[tuple[int, bytes]]:
        """The peer's sessions, most recently used first: (row id, serialised state)."""
        rows = self._conn.execute(
            "SELECT id, state_sealed FROM sessions WHERE peer=? ORDER BY used_at DESC, id DESC",
            (peer,),
        ).fetchall()
        return [(r[0], self._cache._open(r[1])) for r in rows]

    def save_session(self, peer: bytes, row_id: int | None, state: bytes, now: int, *,
                     keep: int = 3) -> int:
        """Store a session (a new one when ``row_id`` is None) as the peer's most recently
        used, keeping at most ``keep`` of the peer's sessions."""
        sealed = self._cache._seal(state)
        if row_id is not None:
            _update_session(self._conn, row_id, sealed, now)
            return row_id
        cur = self._conn.execute(
            "INSERT INTO sessions (peer, state_sealed, used_at) VALUES (?, ?, MAX(?, "
            "COALESCE((SELECT MAX(used_at) FROM sessions WHERE peer=?), 0) + 1))",
            (peer, sealed, now, peer),
        )
        new_id = cur.lastrowid
        assert new_id is not None
        # Keep a few older sessions for messages still in flight under them.
        self._conn.execute(
            "DELETE FROM sessions WHERE peer=? AND id NOT IN (SELECT id FROM sessions "
            "WHERE peer=? ORDER BY used_at DESC, id DESC LIMIT ?)",
            (peer, peer, keep),
        )
        return new_id

    def update_session(self, row_id: int, state: bytes, now: int) -> None:
        _update_session(self._conn, row_id, self._cache._seal(state), now)

    def delete_sessions(self, row_ids: list[int]) -> None:
        self._conn.executemany("DELETE FROM sessions WHERE id=?", [(r,) for r in row_ids])

    def prekey_privates(self, kind: str) -> dict[int, bytes]:
        rows = self._conn.execute(
            "SELECT key_id, private_sealed FROM prekeys WHERE kind=?", (kind,)).fetchall()
        return {r[0]: self._cache._open(r[1]) for r in rows}

    def delete_prekey(self, kind: str, key_id: int) -> None:
        self._conn.execute("DELETE FROM prekeys WHERE kind=? AND key_id=?", (kind, key_id))

    # --- what the receive rules read first (client/rules.py, Facts) ----------------------

    def target(self, conv: bytes, msg_id: bytes) -> tuple[bool, bytes | None, bool] | None:
        """(outgoing, sender, deleted) of a message, or None if there is none."""
        row = self._conn.execute(
            "SELECT outgoing, sender, deleted FROM messages WHERE peer=? AND id=?",
            (conv, msg_id)).fetchone()
        return (bool(row[0]), row[1], bool(row[2])) if row else None

    def reacted(self, conv: bytes, target: bytes, reactor: bytes, emoji: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM reactions WHERE conv=? AND target=? AND reactor=? AND emoji=?",
            (conv, target, reactor, emoji)).fetchone() is not None

    def outgoing_statuses(self, conv: bytes, ids: list[bytes]) -> dict[bytes, int]:
        """The statuses of our own messages in ``conv`` among ``ids``."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            f"SELECT id, status FROM messages WHERE outgoing=1 AND peer=? AND id IN ({marks})",
            (conv, *ids)).fetchall()
        return {r[0]: r[1] for r in rows}


class Cache:
    """The cache of one identity. Every write happens inside :meth:`transaction`, which
    holds the home's lock (client/homelock.py) and commits once at the end, or rolls back:
    no caller takes the lock or commits by hand."""

    def __init__(self, db: Database, storage_key: bytes, lock: HomeLock) -> None:
        self._db = db
        self._box = secret.SecretBox(storage_key)
        self.lock = lock  # one transaction at a time, in this process and across processes
        self._fts_secure = False  # FTS5 'secure-delete' is on (SQLite >= 3.42)
        self._scrub = False  # text was deleted or replaced: scrub() after the commit
        self._durable = True  # the open transaction's commit is fsynced

    @classmethod
    async def open(cls, home: Path, storage_key: bytes, *, lock: HomeLock | None = None,
                   encrypted: bool = True) -> Cache:
        """Open (creating, migrating) HOME's cache, encrypted at rest with a key from
        ``storage_key`` (``encrypted=False``: a plain SQLite file, for the benchmark's side
        by side and the tests that read the file's pages). The cache owns ``lock``
        (default: a new HomeLock on ``home``) and closes it in :meth:`close`."""
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = lock or HomeLock(home)
        try:
            async with lock:  # opening may write (migrations, settings): one at a time
                return await cls._connect(home, storage_key, lock, encrypted)
        except BaseException:
            lock.close()
            raise

    @classmethod
    async def _connect(cls, home: Path, storage_key: bytes, lock: HomeLock,
                       encrypted: bool) -> Cache:
        path = home / FILENAME
        key = cache_key(storage_key) if encrypted else None
        # A plain cache (from before encryption at rest) is encrypted on first unlock.
        if key is not None and await asyncio.to_thread(encrypt_in_place, path, key):
            log.info("encrypted the cache %s", path)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        db = await connect(path, key)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA foreign_keys=ON")
        # Deleted and expired text is overwritten, not just unlinked (whatever this SQLite
        # build's default); see scrub() for the search index and the WAL.
        await db.execute("PRAGMA secure_delete=ON")
        cache = cls(db, storage_key, lock)
        await cache._migrate()
        try:  # SQLite >= 3.42: FTS5 deletes remove the terms themselves
            await db.execute(
                "INSERT INTO messages_fts(messages_fts, rank) VALUES ('secure-delete', 1)")
            await db.commit()
            cache._fts_secure = True
        except operational_errors():
            # The failed INSERT opened a write transaction: end it, or this connection
            # would hold the database's write lock until its first commit and every other
            # process on the home would fail with "database is locked".
            await db.rollback()
            cache._fts_secure = False
        return cache

    async def _migrate(self) -> None:
        """Bring the schema up to date, one migration at a time, each atomic: its script
        and the new user_version commit together (SQLite's DDL is transactional), so a
        crash in between leaves the previous version whole, and the next start runs the
        migration again."""
        async with self._db.execute("PRAGMA user_version") as cur:
            (version,) = await cur.fetchone()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await self._db.run(_migrate_one, self._db.conn, script, number)

    async def close(self) -> None:
        try:
            await self._db.close()
        finally:
            self.lock.close()

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[Cache]:
        """``async with cache.transaction() as tx:`` — one unit of work: the home's lock
        is held throughout, and at the end everything written commits at once (or, if
        the block raises, rolls back). Not re-entrant: a block never opens another.

        ``durable=False`` makes :meth:`run` commit without the fsync: the commit survives
        a crash of this process but maybe not a power loss (the next durable commit syncs
        it too). Only for state whose loss is harmless — a receiving chain advanced by a typing
        indicator derives the same keys again. Never for a send: a sending chain that
        rolled back would reuse message keys."""
        async with self.lock:
            self._durable = durable
            try:
                yield self
                await self.checkpoint()
            except BaseException:
                await self._db.rollback()
                self._scrub = False
                raise
            finally:
                self._durable = True

    async def checkpoint(self) -> None:
        """Commit what the open transaction wrote so far and go on in it (the lock stays
        held): for what must be durable before the relay may act on it, e.g. prekeys
        stored before they are published."""
        assert self.lock.locked(), "checkpoint() outside cache.transaction()"
        if self._db.dirty:
            await self._db.commit()
        if self._scrub:
            await self.scrub()

    async def call(self, fn: Callable[[Txn], T]) -> T:
        """``fn`` on a synchronous view of the cache (:class:`Txn`) in the cache's own
        thread: one hand-off for many statements. Commits nothing (writes belong to the
        open transaction)."""
        return await self._db.run(lambda conn: fn(Txn(self, conn)), self._db.conn)

    async def run(self, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in the cache's own thread on a synchronous view of the cache
        (:class:`Txn`) and commit in the same hand-off: one thread hand-off for a whole
        short hot path (a typing indicator, a batch of signals) instead of one per
        statement. Only inside :meth:`transaction` (whose ``durable`` applies)."""
        assert self.lock.locked(), "run() outside cache.transaction()"
        result = await self._db.run(self._run, self._db.conn, fn, self._durable)
        self._db.dirty = False
        return result

    def _run(self, conn: sqlite3.Connection, fn: Callable[[Txn], T], durable: bool) -> T:
        # The fsync setting can't change inside a transaction: set before, reset after.
        relaxed = not durable and not conn.in_transaction
        if relaxed:
            conn.execute("PRAGMA synchronous=NORMAL")
        try:
            result = fn(Txn(self, conn))
            conn.commit()
        finally:
            if relaxed:
                conn.execute("PRAGMA synchronous=FULL")
        return result

    async def scrub(self) -> None:
        """Leave no copy of deleted, edited-away or expired text in the cache's files.

        secure_delete zeroes the rows themselves, but an FTS5 delete only adds a
        tombstone: the words stay in the index's older segments until they are merged
        (unless FTS5's own secure-delete, SQLite >= 3.42, is on), and the WAL keeps the
        old page images until a checkpoint. So: merge the index (``optimize``), then
        checkpoint and truncate the WAL. Runs after a commit that deleted text, which is
        rare (a delete, an edit, a disappearing message's time up)."""
        self._scrub = False
        if not self._fts_secure:
            await self._db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
            await self._db.commit()
        await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _seal(self, data: bytes) -> bytes:
        return bytes(self._box.encrypt(data))

    def _open(self, data: bytes) -> bytes:
        return self._box.decrypt(data)

    # --- meta -------------------------------------------------------------------------

    async def get_meta(self, key: str) -> bytes | None:
        return await self._db.run(_get_meta, self._db.conn, key)

    async def set_meta(self, key: str, value: bytes | str | int) -> None:
        await self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- prekeys ----------------------------------------------------------------------

    async def put_prekey(self, kind: str, key_id: int, public: bytes, private: bytes,
                         now: int) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO prekeys VALUES (?, ?, ?, ?, ?)",
            (kind, key_id, public, self._seal(private), now),
        )

    async def prekey_private(self, kind: str, key_id: int) -> bytes | None:
        async with self._db.execute(
            "SELECT private_sealed FROM prekeys WHERE kind=? AND key_id=?", (kind, key_id)
        ) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def delete_prekey(self, kind: str, key_id: int) -> None:
        await self._db.execute("DELETE FROM prekeys WHERE kind=? AND key_id=?", (kind, key_id))

    async def prekey_ages(self, kind: str) -> list[tuple[int, int]]:
        """(key id, created at) of every prekey of ``kind`` held, lowest id first."""
        async with self._db.execute(
            "SELECT key_id, created_at FROM prekeys WHERE kind=? ORDER BY key_id", (kind,)
        ) as cur:
            return [(int(r[0]), int(r[1])) for r in await cur.fetchall()]

    async def prekey_count(self, kind: str) -> int:
        async with self._db.execute("SELECT count(*) FROM prekeys WHERE kind=?", (kind,)) as cur:
            (value,) = await cur.fetchone()  # type: ignore[misc]
        return int(value)

    async def prekey_publics(self, kind: str, above: int) -> list[tuple[int, bytes]]:
        """(key id, public key) of the prekeys of ``kind`` with an id above ``above``."""
        async with self._db.execute(
            "SELECT key_id, public FROM prekeys WHERE kind=? AND key_id>? ORDER BY key_id",
            (kind, above),
        ) as cur:
            return [(int(r[0]), bytes(r[1])) for r in await cur.fetchall()]

    async def delete_prekeys(self, kind: str, key_ids: list[int]) -> None:
        await self._db.executemany("DELETE FROM prekeys WHERE kind=? AND key_id=?",
                                   [(kind, k) for k in key_ids])

    async def max_prekey_id(self, kind: str) -> int:
        async with self._db.execute(
            "SELECT COALESCE(MAX(key_id), 0) FROM prekeys WHERE kind=?", (kind,)
        ) as cur:
            (value,) = await cur.fetchone()  # type: ignore[misc]
        return int(value)

    # --- contacts ---------------------------------------------------------------------

    async def contact_by_handle(self, handle: str) -> ContactRow | None:
        async with self._db.execute(
            f"SELECT {_CONTACT_COLS} FROM contacts WHERE handle=?",
            (handle,),
        ) as cur:
            row = await cur.fetchone()
        return _contact(row) if row else None

    async def contact(self, user: bytes) -> ContactRow | None:
        return await self._db.run(_contact_row, self._db.conn, user)

    async def remember_contact(self, user: bytes, handle: str | None, now: int,
                               *, added: bool = False) -> None:
        await self._db.execute(
            "INSERT INTO contacts (user, handle, added, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(user) DO UPDATE SET handle=COALESCE(excluded.handle, handle), "
            "added=MAX(added, excluded.added)",
            (user, handle, int(added), now),
        )

    async def set_contact_flag(self, user: bytes, flag: str, value: bool) -> None:
        assert flag in ("added", "blocked", "verified")
        await self._db.execute(f"UPDATE contacts SET {flag}=? WHERE user=?", (int(value), user))

    async def record_key_change(self, handle: str, user: bytes, now: int
                                ) -> ContactRow | None:
        """The relay says ``handle`` belongs to identity ``user`` (a binding ``user``
        signed, which anyone can make). A handle not pinned here is pinned to ``user``.
        One pinned to another key STAYS with that key: ``user`` becomes a pending key
        change of it (no handle; see accept_key). Returns the pinned contact if so."""
        old = await self.contact_by_handle(handle)
        if old is None or old.user == user:
            await self.remember_contact(user, handle, now)
            return None
        change = KEY_CHANGED_VERIFIED if old.verified else KEY_CHANGED
        await self._db.execute(
            "INSERT INTO contacts (user, handle, added, created_at, previous_key, key_change) "
            "VALUES (?, NULL, 0, ?, ?, ?) ON CONFLICT(user) DO UPDATE SET "
            "previous_key=excluded.previous_key, key_change=excluded.key_change "
            "WHERE handle IS NULL",
            (user, now, old.user, change))
        return old

    async def pending_key(self, user: bytes) -> ContactRow | None:
        """The newest pending key change of the contact ``user`` (that holds a handle)."""
        async with self._db.execute(
            f"SELECT {_CONTACT_COLS} FROM contacts WHERE previous_key=? AND key_change != 0 "
            "AND handle IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 1", (user,),
        ) as cur:
            row = await cur.fetchone()
        return _contact(row) if row else None

    async def accept_key(self, user: bytes) -> None:
        """The user accepted ``user`` as the new key of the handle it claims: the handle
        moves to it (unverified, its added flag kept) and the change is no longer pending."""
        new = await self.contact(user)
        if new is None or not new.key_change:
            return
        old = await self.contact(new.previous_key) if new.previous_key else None
        if old is not None and old.handle is not None:
            await self._db.execute("UPDATE contacts SET handle=NULL WHERE user=?", (old.user,))
            await self._db.execute(
                "UPDATE contacts SET handle=?, added=MAX(added, ?), verified=0 WHERE user=?",
                (old.handle, int(old.added), user))
        await self._db.execute("UPDATE contacts SET key_change=0 WHERE user=?", (user,))

    async def reject_key(self, user: bytes) -> None:
        """The user refused a pending key change: ``user`` no longer claims the handle."""
        await self._db.execute(
            "UPDATE contacts SET key_change=0, previous_key=NULL WHERE user=? AND key_change != 0",
            (user,))

    async def contacts(self) -> list[ContactRow]:
        async with self._db.execute(
            f"SELECT {_CONTACT_COLS} FROM contacts "
            "WHERE added OR blocked OR verified OR key_change "
            "OR user IN (SELECT DISTINCT peer FROM messages) "
            "ORDER BY handle"
        ) as cur:
            return [_contact(r) for r in await cur.fetchall()]

    # --- sessions ---------------------------------------------------------------------

    async def sessions(self, peer: bytes) -> list[tuple[int, bytes]]:
        """The peer's sessions, most recently used first: (row id, serialised state)."""
        return await self.call(lambda tx: tx.sessions(peer))

    async def save_session(self, peer: bytes, row_id: int | None, state: bytes,
                           now: int, *, keep: int = 3) -> int:
        return await self.call(lambda tx: tx.save_session(peer, row_id, state, now, keep=keep))

    async def delete_sessions(self, row_ids: list[int]) -> None:
        await self.call(lambda tx: tx.delete_sessions(row_ids))

    # --- messages ---------------------------------------------------------------------

    async def add_message(self, msg: MessageRow, *, shown: bool) -> bool:
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

    async def raise_status(self, peer: bytes, ids: list[bytes], status: int) -> list[bytes]:
        """Move our own messages to ``peer`` forward to ``status`` (never backwards).

        Only messages we sent to ``peer`` match, so a receipt from one peer can't
        touch a conversation with another. Returns the ids that changed.
        """
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        async with self._db.execute(
            f"UPDATE messages SET status=? WHERE outgoing=1 AND peer=? AND status<? "
            f"AND id IN ({marks}) RETURNING id",
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
            f"SELECT {_MSG_COLS} FROM messages WHERE peer=? AND rowid<? "
            f"ORDER BY rowid DESC LIMIT ?",
            (peer, bound, limit),
        ) as cur:
            rows = [_msg(r) for r in await cur.fetchall()]
        rows.reverse()
        return rows

    async def after(self, peer: bytes, key: int, limit: int) -> list[MessageRow]:
        """Up to ``limit`` messages with peer from key ``key`` on (inclusive), oldest first."""
        async with self._db.execute(
            f"SELECT {_MSG_COLS} FROM messages WHERE peer=? AND rowid>=? "
            f"ORDER BY rowid LIMIT ?",
            (peer, key, limit),
        ) as cur:
            return [_msg(r) for r in await cur.fetchall()]

    async def count(self, peer: bytes) -> int:
        async with self._db.execute("SELECT count(*) FROM messages WHERE peer=?", (peer,)) as cur:
            (n,) = await cur.fetchone()  # type: ignore[misc]
        return int(n)

    async def search(self, text: str, peer: bytes | None,
                     limit: int) -> list[tuple[MessageRow, str]]:
        """Full-text matches, newest first: (message, snippet with [ ] around hits)."""
        query = fts_query(text)
        if not query:
            return []
        where = "messages_fts MATCH ?" + (" AND m.peer=?" if peer is not None else "")
        args: tuple = (query, peer, limit) if peer is not None else (query, limit)
        async with self._db.execute(
            f"SELECT {_M_COLS}, snippet(messages_fts, 0, '[', ']', '…', 12) "
            f"FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid "
            f"WHERE {where} ORDER BY messages_fts.rowid DESC LIMIT ?",  # FTS order: no sort
            args,
        ) as cur:
            return [(_msg(r[:_NCOLS]), r[_NCOLS]) for r in await cur.fetchall()]

    # --- conversations ----------------------------------------------------------------

    async def conversations(self) -> list[ConversationRow]:
        """Pinned first, then by latest activity."""
        async with self._db.execute(
            f"SELECT c.peer, ct.handle, c.unread, c.pinned, c.muted, COALESCE(ct.blocked, 0), "
            f"c.timer, g.state, COALESCE(ct.verified, 0), {_M_COLS} FROM conversations c "
            f"LEFT JOIN groups g ON g.id = c.peer "
            f"LEFT JOIN contacts ct ON ct.user = c.peer "
            f"LEFT JOIN messages m ON m.rowid = c.last_key "
            f"ORDER BY c.pinned DESC, c.last_key DESC, ct.handle"
        ) as cur:
            rows = await cur.fetchall()
        return [
            ConversationRow(r[0], r[1], r[2], bool(r[3]), bool(r[4]), bool(r[5]),
                            _msg(r[9:9 + _NCOLS]) if r[9] is not None else None,
                            r[6], _group_name(r[7]), bool(r[8]))
            for r in rows
        ]

    async def ensure_conversation(self, peer: bytes) -> None:
        await self._db.execute("INSERT OR IGNORE INTO conversations (peer) VALUES (?)", (peer,))

    async def set_conversation_flag(self, peer: bytes, flag: str, value: bool) -> None:
        assert flag in ("pinned", "muted")
        await self.ensure_conversation(peer)
        await self._db.execute(f"UPDATE conversations SET {flag}=? WHERE peer=?",
                               (int(value), peer))

    async def insert_many(self, rows: list[MessageRow]) -> None:
        """Bulk insert (imports, benchmarks); duplicates are ignored."""
        await self._db.executemany(
            "INSERT OR IGNORE INTO messages (id, peer, outgoing, text, sent_at, received_at, "
            "status, shown) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            [(m.id, m.peer, int(m.outgoing), m.text, m.sent_at, m.received_at, m.status)
             for m in rows],
        )

    async def message(self, peer: bytes, msg_id: bytes) -> MessageRow | None:
        async with self._db.execute(
            f"SELECT {_MSG_COLS} FROM messages WHERE peer=? AND id=?", (peer, msg_id)
        ) as cur:
            row = await cur.fetchone()
        return _msg(row) if row else None

    async def unshown(self) -> list[MessageRow]:
        """Incoming messages not yet printed by `inbox`, oldest first."""
        async with self._db.execute(
            f"SELECT {_MSG_COLS} FROM messages WHERE shown=0 AND outgoing=0 "
            f"ORDER BY received_at, rowid"
        ) as cur:
            return [_msg(r) for r in await cur.fetchall()]

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

    async def unread(self, peer: bytes) -> list[tuple[bytes, bytes | None]]:
        """Unread incoming messages of a conversation: (id, author — None in 1:1)."""
        async with self._db.execute(
            "SELECT id, sender FROM messages WHERE peer=? AND outgoing=0 AND status<?",
            (peer, READ)
        ) as cur:
            return [(r[0], r[1]) for r in await cur.fetchall()]

    async def my_reactions(self, conv: bytes, me: bytes,
                           targets: list[bytes]) -> dict[bytes, set[str]]:
        """The emoji we ourselves put on each of these messages (to offer taking them back)."""
        if not targets:
            return {}
        marks = ",".join("?" * len(targets))
        async with self._db.execute(
            f"SELECT target, emoji FROM reactions WHERE conv=? AND reactor=? "
            f"AND target IN ({marks})", (conv, me, *targets)) as cur:
            out: dict[bytes, set[str]] = {}
            for target, emoji in await cur.fetchall():
                out.setdefault(target, set()).add(emoji)
        return out

    async def seen_by_many(self, conv: bytes, targets: list[bytes]) -> dict[bytes, int]:
        """``seen_by`` for many messages in one query."""
        if not targets:
            return {}
        marks = ",".join("?" * len(targets))
        async with self._db.execute(
            f"SELECT target, count(*) FROM msg_receipts WHERE conv=? AND status>=? "
            f"AND target IN ({marks}) GROUP BY target", (conv, READ, *targets)) as cur:
            return {r[0]: int(r[1]) for r in await cur.fetchall()}

    async def unread_ids(self, peer: bytes) -> list[bytes]:
        async with self._db.execute(
            "SELECT id FROM messages WHERE peer=? AND outgoing=0 AND status<?", (peer, READ)
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def mark_incoming_read(self, peer: bytes, ids: list[bytes]) -> None:
        await self._db.executemany(
            # read in a UI counts as shown: `inbox` won't print it again
            "UPDATE messages SET status=?, shown=1 WHERE peer=? AND id=? AND outgoing=0",
            [(READ, peer, i) for i in ids],
        )

    # --- outbox -----------------------------------------------------------------------

    async def outbox_add(self, msg_id: bytes, peer: bytes, envelope: bytes, now: int, *,
                         kind: str = "direct", expires_at: int = 0) -> None:
        """Queue an encrypted envelope (``kind`` 'group': a group message; peer = group id)."""
        await self._db.execute(
            "INSERT OR IGNORE INTO outbox (msg_id, peer, envelope, created_at, kind, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (msg_id, peer, envelope, now, kind, expires_at),
        )

    async def outbox_defer(self, msg_id: bytes, peer: bytes, content: bytes, now: int, *,
                           expires_at: int = 0) -> None:
        """Queue content to encrypt later (no session yet, and maybe no relay to start one)."""
        await self._db.execute(
            "INSERT OR IGNORE INTO outbox (msg_id, peer, envelope, created_at, content_sealed, "
            "expires_at) VALUES (?, ?, x'', ?, ?, ?)",
            (msg_id, peer, now, self._seal(content), expires_at),
        )

    async def outbox_deferred(self) -> list[tuple[bytes, bytes, bytes]]:
        """Queued content not yet encrypted, oldest first: (msg_id, peer, content)."""
        async with self._db.execute(
            "SELECT msg_id, peer, content_sealed FROM outbox WHERE length(envelope)=0 "
            "ORDER BY created_at, rowid"
        ) as cur:
            return [(r[0], r[1], self._open(r[2])) for r in await cur.fetchall()]

    async def outbox_encrypted(self, msg_id: bytes, envelope: bytes) -> None:
        await self._db.execute(
            "UPDATE outbox SET envelope=?, content_sealed=NULL WHERE msg_id=?", (envelope, msg_id)
        )

    async def outbox(self) -> list[tuple[bytes, bytes, bytes]]:
        """Pending outgoing envelopes, oldest first: (msg_id, peer, envelope)."""
        return [(i.msg_id, i.peer, i.envelope) for i in await self.outbox_items()]

    async def outbox_items(self) -> list[Item]:
        """Encrypted outbox items, oldest first. ``written`` through the messages' primary
        key (peer, id): an ``id IN (…)`` alone has no index and scanned the whole cache
        on every flush (187 ms with a million cached messages)."""
        async with self._db.execute(
            "SELECT o.msg_id, o.peer, o.envelope, o.kind, o.expires_at, EXISTS("
            " SELECT 1 FROM messages m WHERE m.peer=o.peer AND m.id=o.msg_id AND m.outgoing)"
            " FROM outbox o WHERE length(o.envelope)>0 ORDER BY o.created_at, o.rowid"
        ) as cur:
            return [Item(r[0], r[1], r[2], r[3], r[4], bool(r[5]))
                    for r in await cur.fetchall()]

    async def outbox_done(self, msg_id: bytes, peer: bytes) -> bool:
        """The relay stored it: drop it from the outbox; True if a message became *sent*."""
        await self._db.execute("DELETE FROM outbox WHERE msg_id=?", (msg_id,))
        cur = await self._db.execute(
            "UPDATE messages SET status=? WHERE peer=? AND id=? AND outgoing=1 AND status<?",
            (SENT, peer, msg_id, SENT),
        )
        return cur.rowcount == 1

    async def prekey_privates(self, kind: str) -> dict[int, bytes]:
        return await self.call(lambda tx: tx.prekey_privates(kind))

    # --- message actions, timers, receipts in groups (schema 4) -------------------------

    @staticmethod
    def _by(author: bytes | None, group: bool) -> tuple[str, tuple]:
        """SQL matching messages written by ``author`` (None: by us) in a conversation."""
        if author is None:
            return "outgoing=1", ()
        return ("outgoing=0 AND sender=?", (author,)) if group else ("outgoing=0", ())

    async def edit_message(self, conv: bytes, target: bytes, author: bytes | None, group: bool,
                           text: str, *, mention: bool = False) -> bool:
        """Replace the text of ``author``'s message (only theirs); False if none matched."""
        where, args = self._by(author, group)
        cur = await self._db.execute(
            f"UPDATE messages SET text=?, edited=1, mention=? WHERE peer=? AND id=? "
            f"AND deleted=0 AND {where}", (text, int(mention), conv, target, *args))
        self._scrub |= cur.rowcount == 1  # the old text goes
        return cur.rowcount == 1

    async def delete_message(self, conv: bytes, target: bytes, author: bytes | None,
                             group: bool) -> bool:
        where, args = self._by(author, group)
        cur = await self._db.execute(
            f"UPDATE messages SET text='', deleted=1, reply_to=NULL WHERE peer=? AND id=? "
            f"AND {where}", (conv, target, *args))
        if cur.rowcount:
            self._scrub = True
            await self._db.execute("DELETE FROM reactions WHERE conv=? AND target=?",
                                   (conv, target))
            await self.drop_attachment(conv, target)
            await self.drop_sticker_msg(conv, target)
        return cur.rowcount == 1

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
        if await self.message(conv, target) is None:
            return False  # no reactions to messages we don't have (or that were deleted)
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO reactions VALUES (?, ?, ?, ?)", (conv, target, reactor, emoji))
        return cur.rowcount == 1

    async def reactions(self, conv: bytes, targets: list[bytes]) -> dict[bytes, dict[str, int]]:
        """Emoji counts per message: {msg id: {emoji: count}}."""
        if not targets:
            return {}
        marks = ",".join("?" * len(targets))
        async with self._db.execute(
            f"SELECT target, emoji, count(*) FROM reactions WHERE conv=? AND target IN ({marks}) "
            f"GROUP BY target, emoji ORDER BY min(rowid)", (conv, *targets)
        ) as cur:
            out: dict[bytes, dict[str, int]] = {}
            for target, emoji, n in await cur.fetchall():
                out.setdefault(target, {})[emoji] = n
        return out

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
            (n,) = await cur.fetchone()  # type: ignore[misc]
        return int(n)

    async def timer(self, conv: bytes) -> int:
        async with self._db.execute("SELECT timer FROM conversations WHERE peer=?",
                                    (conv,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def set_timer(self, conv: bytes, seconds: int) -> None:
        await self.ensure_conversation(conv)
        await self._db.execute("UPDATE conversations SET timer=? WHERE peer=?", (seconds, conv))

    async def purge_expired(self, now: int) -> list[tuple[bytes, bytes]]:
        """Delete disappearing messages whose time is up; (conv, id) of each."""
        async with self._db.execute(
            "DELETE FROM messages WHERE expires_at > 0 AND expires_at <= ? RETURNING peer, id",
            (now,)) as cur:
            gone = [(r[0], r[1]) for r in await cur.fetchall()]
        self._scrub |= bool(gone)
        for conv, target in gone:
            await self._db.execute("DELETE FROM reactions WHERE conv=? AND target=?",
                                   (conv, target))
            await self.drop_attachment(conv, target)
            await self.drop_sticker_msg(conv, target)
        return gone

    # --- attachments --------------------------------------------------------------------

    async def put_attachment(self, conv: bytes, msg_id: bytes, ref: bytes) -> None:
        """``ref`` is a MediaRef, MessagePack: stored sealed (it holds the file's key)."""
        await self._db.execute(
            "INSERT OR IGNORE INTO attachments (conv, msg, ref_sealed) VALUES (?, ?, ?)",
            (conv, msg_id, self._seal(ref)))

    async def attachments(self, conv: bytes, ids: list[bytes]) -> dict[bytes, bytes]:
        """msg id -> MediaRef (MessagePack) of the messages in ``ids`` that have one."""
        out: dict[bytes, bytes] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            async with self._db.execute(
                f"SELECT msg, ref_sealed FROM attachments WHERE conv=? "
                f"AND msg IN ({','.join('?' * len(chunk))})", (conv, *chunk)) as cur:
                out.update((r[0], self._open(r[1])) for r in await cur.fetchall())
        return out

    async def find_attachments(self, prefix: str) -> list[tuple[bytes, bytes, bytes]]:
        """(conv, msg id, MediaRef) of every attachment whose message id starts with the
        hex ``prefix``."""
        async with self._db.execute(
            "SELECT conv, msg, ref_sealed FROM attachments WHERE hex(msg) LIKE ?",
            (prefix.upper() + "%",)) as cur:
            return [(r[0], r[1], self._open(r[2])) for r in await cur.fetchall()]

    async def drop_attachment(self, conv: bytes, msg_id: bytes) -> None:
        await self._db.execute("DELETE FROM attachments WHERE conv=? AND msg=?", (conv, msg_id))

    # --- groups -------------------------------------------------------------------------

    async def group_state(self, group: bytes) -> tuple[bytes, bytes | None, bool] | None:
        """(state MessagePack, sealed-opened own sender key or None, left) of a group."""
        async with self._db.execute(
            "SELECT state, my_key_sealed, left FROM groups WHERE id=?", (group,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return row[0], (self._open(row[1]) if row[1] else None), bool(row[2])

    async def save_group(self, group: bytes, state: bytes, records: list[tuple[int, bytes]],
                         *, left: bool = False) -> None:
        await self._db.execute(
            "INSERT INTO groups (id, state, left) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
            "SET state=excluded.state, left=excluded.left", (group, state, int(left)))
        await self._db.executemany("INSERT OR IGNORE INTO group_records VALUES (?, ?, ?)",
                                   [(group, v, r) for v, r in records])
        await self.ensure_conversation(group)

    async def group_records(self, group: bytes) -> list[bytes]:
        async with self._db.execute(
            "SELECT record FROM group_records WHERE grp=? ORDER BY version", (group,)) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def groups(self) -> list[bytes]:
        async with self._db.execute("SELECT id FROM groups ORDER BY rowid") as cur:
            return [r[0] for r in await cur.fetchall()]

    async def set_my_sender_key(self, group: bytes, key: bytes | None) -> None:
        await self._db.execute("UPDATE groups SET my_key_sealed=? WHERE id=?",
                               (self._seal(key) if key is not None else None, group))
        if key is None:
            await self._db.execute("DELETE FROM sender_key_sent WHERE grp=?", (group,))

    async def sender_key_sent(self, group: bytes, chain_id: int) -> set[bytes]:
        async with self._db.execute(
            "SELECT user FROM sender_key_sent WHERE grp=? AND chain_id=?",
            (group, chain_id.to_bytes(4, "big"))) as cur:
            return {r[0] for r in await cur.fetchall()}

    async def mark_sender_key_sent(self, group: bytes, users: list[bytes], chain_id: int) -> None:
        await self._db.executemany(
            "INSERT OR REPLACE INTO sender_key_sent VALUES (?, ?, ?)",
            [(group, u, chain_id.to_bytes(4, "big")) for u in users])

    async def put_sender_key(self, group: bytes, sender: bytes, chain_id: int,
                             state: bytes) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO sender_keys VALUES (?, ?, ?, ?)",
            (group, sender, chain_id.to_bytes(4, "big"), self._seal(state)))

    async def sender_key(self, group: bytes, sender: bytes, chain_id: int) -> bytes | None:
        async with self._db.execute(
            "SELECT state_sealed FROM sender_keys WHERE grp=? AND sender=? AND chain_id=?",
            (group, sender, chain_id.to_bytes(4, "big"))) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def add_pending_group(self, group: bytes, item: tuple[int, bytes, bytes, int, bytes]
                                ) -> None:
        await self._db.execute("INSERT OR IGNORE INTO pending_group VALUES (?, ?, ?, ?, ?, ?)",
                               (group, *item))

    async def take_pending_group(self, group: bytes, sender: bytes
                                 ) -> list[tuple[int, bytes, bytes, int, bytes]]:
        async with self._db.execute(
            "DELETE FROM pending_group WHERE grp=? AND sender=? "
            "RETURNING gseq, sender, msg, at, body", (group, sender)) as cur:
            rows = [(r[0], r[1], r[2], r[3], r[4]) for r in await cur.fetchall()]
        return sorted(rows)

    async def outbox_drop(self, msg_id: bytes) -> None:
        await self._db.execute("DELETE FROM outbox WHERE msg_id=?", (msg_id,))

    async def mark_group_left(self, group: bytes) -> None:
        await self._db.execute("UPDATE groups SET left=1 WHERE id=?", (group,))

    # --- audience keys (followers-only posts) ----------------------------------------------

    async def put_audience_key(self, author: bytes, key_id: int, key: bytes,
                               now: int) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO audience_keys (author, key_id, key_sealed, created_at)"
            " VALUES (?, ?, ?, ?)", (author, key_id, self._seal(key), now))

    async def audience_key(self, author: bytes, key_id: int) -> bytes | None:
        async with self._db.execute(
                "SELECT key_sealed FROM audience_keys WHERE author=? AND key_id=?",
                (author, key_id)) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def current_audience_key(self, author: bytes) -> tuple[int, bytes] | None:
        async with self._db.execute(
                "SELECT key_id, key_sealed FROM audience_keys WHERE author=?"
                " ORDER BY created_at DESC, rowid DESC LIMIT 1", (author,)) as cur:
            row = await cur.fetchone()
        return (int(row[0]), self._open(row[1])) if row else None

    async def audience_members(self) -> dict[bytes, int]:
        async with self._db.execute("SELECT follower, key_id FROM audience_members") as cur:
            return {bytes(r[0]): int(r[1]) for r in await cur.fetchall()}

    async def set_audience_members(self, members: dict[bytes, int]) -> None:
        await self._db.execute("DELETE FROM audience_members")
        await self._db.executemany("INSERT INTO audience_members VALUES (?, ?)",
                                   list(members.items()))

    # --- stories ----------------------------------------------------------------------------

    async def put_story_key(self, author: bytes, key_id: int, key: bytes, now: int) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO story_keys (author, key_id, key_sealed, created_at)"
            " VALUES (?, ?, ?, ?)", (author, key_id, self._seal(key), now))

    async def story_key(self, author: bytes, key_id: int) -> bytes | None:
        async with self._db.execute(
                "SELECT key_sealed FROM story_keys WHERE author=? AND key_id=?",
                (author, key_id)) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def current_story_key(self, author: bytes) -> tuple[int, bytes] | None:
        async with self._db.execute(
                "SELECT key_id, key_sealed FROM story_keys WHERE author=?"
                " ORDER BY created_at DESC, rowid DESC LIMIT 1", (author,)) as cur:
            row = await cur.fetchone()
        return (int(row[0]), self._open(row[1])) if row else None

    async def close_friends(self) -> dict[bytes, int | None]:
        """Our close friends, each with the id of the key they were sent (None: none)."""
        async with self._db.execute("SELECT user, key_id FROM close_friends") as cur:
            return {bytes(r[0]): r[1] for r in await cur.fetchall()}

    async def set_close_friend(self, user: bytes, on: bool) -> bool:
        """Add (or remove) a close friend; True if the list changed."""
        if on:
            cur = await self._db.execute(
                "INSERT OR IGNORE INTO close_friends (user, key_id) VALUES (?, NULL)", (user,))
        else:
            cur = await self._db.execute("DELETE FROM close_friends WHERE user=?", (user,))
        return cur.rowcount > 0

    async def set_close_friend_keys(self, members: dict[bytes, int | None]) -> None:
        await self._db.executemany("UPDATE close_friends SET key_id=? WHERE user=?",
                                   [(k, u) for u, k in members.items()])

    async def put_story(self, story: bytes, author: bytes, posted_at: int, expires_at: int,
                        record: bytes, *, seen: bool = False) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO stories (id, author, posted_at, expires_at, record, seen)"
            " VALUES (?, ?, ?, ?, ?, ?)", (story, author, posted_at, expires_at, record,
                                           int(seen)))

    async def drop_expired_stories(self, now: int) -> int:
        """Delete stories (and their view receipts) that expired by ``now``; how many."""
        async with self._db.execute(
                "DELETE FROM stories WHERE expires_at <= ? RETURNING id", (now,)) as cur:
            gone = [(r[0],) for r in await cur.fetchall()]
        if gone:
            await self._db.executemany("DELETE FROM story_views WHERE story=?", gone)
        return len(gone)

    async def stories(self, now: int) -> list[tuple[bytes, bytes, bytes, bool]]:
        """(id, author, record, seen) of every unexpired story, newest first."""
        async with self._db.execute(
                "SELECT id, author, record, seen FROM stories WHERE expires_at > ?"
                " ORDER BY posted_at DESC, id", (now,)) as cur:
            return [(bytes(r[0]), bytes(r[1]), bytes(r[2]), bool(r[3]))
                    for r in await cur.fetchall()]

    async def story(self, story: bytes, now: int) -> tuple[bytes, bytes, bool] | None:
        """(author, record, seen) of an unexpired story."""
        async with self._db.execute(
                "SELECT author, record, seen FROM stories WHERE id=? AND expires_at > ?",
                (story, now)) as cur:
            row = await cur.fetchone()
        return (bytes(row[0]), bytes(row[1]), bool(row[2])) if row else None

    async def story_ids_like(self, prefix: str, now: int) -> list[bytes]:
        async with self._db.execute(
                "SELECT id FROM stories WHERE expires_at > ? AND hex(id) LIKE ?",
                (now, prefix.upper() + "%")) as cur:
            return [bytes(r[0]) for r in await cur.fetchall()]

    async def mark_story_seen(self, story: bytes) -> None:
        await self._db.execute("UPDATE stories SET seen=1 WHERE id=?", (story,))

    async def add_story_view(self, story: bytes, viewer: bytes, at: int, me: bytes) -> bool:
        """Record a view receipt, if ``story`` is one of ours (``me``); True if new."""
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO story_views (story, viewer, at) SELECT ?, ?, ?"
            " WHERE EXISTS (SELECT 1 FROM stories WHERE id=? AND author=?)",
            (story, viewer, at, story, me))
        return cur.rowcount > 0

    async def story_views(self, story: bytes) -> list[tuple[bytes, int]]:
        async with self._db.execute(
                "SELECT viewer, at FROM story_views WHERE story=? ORDER BY at, viewer",
                (story,)) as cur:
            return [(bytes(r[0]), int(r[1])) for r in await cur.fetchall()]

    # --- polls ----------------------------------------------------------------------------

    async def put_poll(self, conv: bytes, poll_id: bytes, creator: bytes, question: str,
                       options: list[str], multiple: bool, anonymous: bool) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO polls (conv, id, creator, question, options, multiple, "
            "anonymous) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (conv, poll_id, creator, question, msgspec.msgpack.encode(options), int(multiple),
             int(anonymous)))

    async def poll(self, conv: bytes, poll_id: bytes) -> PollRow | None:
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

    async def poll_ids(self, conv: bytes, ids: list[bytes]) -> set[bytes]:
        """Which of these message ids are polls."""
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        async with self._db.execute(
            f"SELECT id FROM polls WHERE conv=? AND id IN ({marks})", (conv, *ids)) as cur:
            return {r[0] for r in await cur.fetchall()}

    async def close_poll(self, conv: bytes, poll_id: bytes) -> bool:
        cur = await self._db.execute(
            "UPDATE polls SET closed=1 WHERE conv=? AND id=? AND closed=0", (conv, poll_id))
        return cur.rowcount == 1

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

    async def votes(self, conv: bytes, poll_id: bytes) -> dict[bytes, list[int]]:
        """Every voter's current choices, in the order they first voted."""
        async with self._db.execute(
            "SELECT voter, choices FROM poll_votes WHERE conv=? AND poll=? ORDER BY rowid",
            (conv, poll_id)) as cur:
            return {r[0]: msgspec.msgpack.decode(r[1]) for r in await cur.fetchall()}

    # --- stickers -------------------------------------------------------------------------

    async def put_sticker_pack(self, manifest: bytes, key: bytes, name: str, opened: bytes,
                               now: int, *, installed: bool) -> None:
        await self._db.execute(
            "INSERT INTO sticker_packs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(manifest) DO "
            "UPDATE SET installed=MAX(installed, excluded.installed)",
            (manifest, self._seal(key), name, self._seal(opened), int(installed), now))

    async def sticker_packs(self, *, installed_only: bool = True
                            ) -> list[tuple[bytes, bytes, str, bytes]]:
        """(manifest id, pack key, name, manifest MessagePack), oldest first."""
        where = "WHERE installed=1 " if installed_only else ""
        async with self._db.execute(
            f"SELECT manifest, key_sealed, name, manifest_sealed FROM sticker_packs {where}"
            f"ORDER BY created_at, rowid") as cur:
            return [(r[0], self._open(r[1]), r[2], self._open(r[3]))
                    for r in await cur.fetchall()]

    async def sticker_pack(self, manifest: bytes) -> tuple[bytes, str, bytes] | None:
        """(pack key, name, manifest MessagePack) of a pack we have opened."""
        async with self._db.execute(
            "SELECT key_sealed, name, manifest_sealed FROM sticker_packs WHERE manifest=?",
            (manifest,)) as cur:
            row = await cur.fetchone()
        return (self._open(row[0]), row[1], self._open(row[2])) if row else None

    async def put_sticker_image(self, blob: bytes, data: bytes) -> None:
        await self._db.execute("INSERT OR IGNORE INTO sticker_images VALUES (?, ?)",
                               (blob, self._seal(data)))

    async def sticker_image(self, blob: bytes) -> bytes | None:
        async with self._db.execute(
            "SELECT data_sealed FROM sticker_images WHERE hash=?", (blob,)) as cur:
            row = await cur.fetchone()
        return self._open(row[0]) if row else None

    async def put_sticker_msg(self, conv: bytes, msg_id: bytes, content: bytes) -> None:
        await self._db.execute("INSERT OR IGNORE INTO sticker_msgs VALUES (?, ?, ?)",
                               (conv, msg_id, self._seal(content)))

    async def sticker_msgs(self, conv: bytes, ids: list[bytes]) -> dict[bytes, bytes]:
        """msg id -> Sticker content (MessagePack) of the messages in ``ids`` that are one."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        async with self._db.execute(
            f"SELECT msg, ref_sealed FROM sticker_msgs WHERE conv=? AND msg IN ({marks})",
            (conv, *ids)) as cur:
            return {r[0]: self._open(r[1]) for r in await cur.fetchall()}

    async def drop_sticker_msg(self, conv: bytes, msg_id: bytes) -> None:
        """A deleted or disappeared sticker message: forget its pack key too."""
        await self._db.execute("DELETE FROM sticker_msgs WHERE conv=? AND msg=?", (conv, msg_id))
