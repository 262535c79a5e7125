"""The cache's schema: its migrations, in order, and the runner that applies them.

Every migration is atomic: its script and the ``user_version`` bump run in ONE
transaction (SQLite's DDL is transactional), so a crash in between leaves the previous
version whole and the next start simply runs the migration again
(tests/client/test_cache.py). A migration that shipped is never edited: a new one is
appended.
"""

from __future__ import annotations

import sqlite3

from .conversations import SUMMARY_SCHEMA
from .devices import DEVICES_SCHEMA

__all__ = ["MIGRATIONS", "migrate"]

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
    # 13: accounts and devices (issue 16): client/cache/devices.py
    DEVICES_SCHEMA,
    # 14: the conversation list's summary (latest message, unread) in the conversation's
    # row, kept by triggers; an index in the list's order: client/cache/conversations.py
    SUMMARY_SCHEMA,
    # 15: a poll_close that came before its poll, kept until the poll comes (it then
    # arrives closed if the closer is its creator): client/poll_rules.py KeepEarlyClose
    """
    CREATE TABLE poll_early_closes (
        conv BLOB NOT NULL, poll BLOB NOT NULL, author BLOB NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (conv, poll, author)
    ) WITHOUT ROWID;
    CREATE INDEX poll_early_closes_at ON poll_early_closes (at);
    """,
]


def _migrate_one(conn: sqlite3.Connection, script: str, number: int) -> None:
    # executescript() commits whatever is open first, then runs the script as written:
    # the BEGIN and COMMIT here make the script and the version bump one transaction.
    try:
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date (in the connection's thread), one atomic migration at
    a time."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        _migrate_one(conn, script, number)
