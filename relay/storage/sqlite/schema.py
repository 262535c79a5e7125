"""The SQLite schema: versioned migrations, applied in order when the store opens.

``PRAGMA user_version`` is the number of migrations applied; index i of MIGRATIONS
brings the schema from version i to i + 1. A migration is only ever appended.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import aiosqlite

__all__ = ["MIGRATIONS", "migrate"]

log = logging.getLogger("tenchat.relay.storage")

MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE handles (
        handle TEXT PRIMARY KEY,
        user BLOB NOT NULL UNIQUE,
        sig BLOB NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE signed_prekeys (
        user BLOB PRIMARY KEY,
        key_id INTEGER NOT NULL,
        pub BLOB NOT NULL,
        sig BLOB NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE one_time_prekeys (
        user BLOB NOT NULL,
        key_id INTEGER NOT NULL,
        pub BLOB NOT NULL,
        PRIMARY KEY (user, key_id)
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient BLOB NOT NULL,
        sender BLOB NOT NULL,
        msg_id BLOB NOT NULL,
        at INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX messages_queue ON messages (recipient, seq);
    -- Outlives the message itself, so a retry after the recipient's ack is still recognised.
    CREATE TABLE sent (
        sender BLOB NOT NULL,
        msg_id BLOB NOT NULL,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (sender, msg_id)
    ) WITHOUT ROWID;
    """,
    # 2: groups (a log per group, a cursor per member), blocks, privacy, expiry.
    # "grp" is the group id (GROUP is an SQL keyword).
    """
    ALTER TABLE messages ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at > 0;
    CREATE TABLE groups (
        id BLOB PRIMARY KEY,
        version INTEGER NOT NULL,
        head BLOB NOT NULL,
        name TEXT NOT NULL,
        topic TEXT NOT NULL DEFAULT '',
        avatar BLOB NOT NULL DEFAULT x'',
        announce INTEGER NOT NULL DEFAULT 0,
        last_gseq INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE group_members (
        grp BLOB NOT NULL,
        user BLOB NOT NULL,
        role TEXT NOT NULL,
        cursor INTEGER NOT NULL,
        PRIMARY KEY (grp, user)
    ) WITHOUT ROWID;
    CREATE INDEX group_members_by_user ON group_members (user, grp);
    CREATE TABLE group_records (
        grp BLOB NOT NULL,
        version INTEGER NOT NULL,
        record BLOB NOT NULL,
        PRIMARY KEY (grp, version)
    ) WITHOUT ROWID;
    CREATE TABLE group_log (
        gseq INTEGER PRIMARY KEY,
        grp BLOB NOT NULL,
        sender BLOB NOT NULL,
        msg BLOB NOT NULL,
        at INTEGER NOT NULL,
        body BLOB NOT NULL,
        change INTEGER NOT NULL DEFAULT 0,
        expires_at INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX group_log_by_group ON group_log (grp, gseq);
    CREATE INDEX group_log_expiry ON group_log (expires_at) WHERE expires_at > 0;
    -- Dedupe of group_send retries, pruned like `sent` (no semicolons in comments here)
    CREATE TABLE group_sent (
        grp BLOB NOT NULL,
        sender BLOB NOT NULL,
        msg BLOB NOT NULL,
        gseq INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (grp, sender, msg)
    ) WITHOUT ROWID;
    CREATE INDEX group_sent_at ON group_sent (at);
    CREATE TABLE blocks (
        user BLOB NOT NULL,
        blocked BLOB NOT NULL,
        PRIMARY KEY (user, blocked)
    ) WITHOUT ROWID;
    CREATE TABLE privacy (
        user BLOB PRIMARY KEY,
        hide_presence INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: media blobs. The bytes are files under DATA/blobs (content-addressed ciphertext)
    # and only metadata is here. expires_at 0 = kept for good.
    """
    CREATE TABLE blobs (
        hash BLOB PRIMARY KEY,
        owner BLOB NOT NULL,
        size INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE INDEX blobs_by_owner ON blobs (owner);
    CREATE TABLE blob_uploads (
        user BLOB NOT NULL,
        hash BLOB NOT NULL,
        size INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        PRIMARY KEY (user, hash)
    ) WITHOUT ROWID;
    """,
    # 4: the social layer: signed profiles and follows (public records, checked on write).
    # state 0 = a request a private account has not approved yet, 1 = following.
    """
    CREATE TABLE profiles (
        user BLOB PRIMARY KEY,
        record BLOB NOT NULL,
        updated_at INTEGER NOT NULL,
        private INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE follows (
        follower BLOB NOT NULL,
        target BLOB NOT NULL,
        record BLOB NOT NULL,
        approval BLOB,
        state INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (follower, target)
    ) WITHOUT ROWID;
    CREATE INDEX follows_by_target ON follows (target, state, at);
    CREATE INDEX follows_by_follower ON follows (follower, state, at);
    """,
    # 5: posts: signed records, stored as given (followers-only ones are ciphertext).
    # seq orders them (newest = largest); a page is one query on (author, seq).
    """
    CREATE TABLE posts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL UNIQUE,
        author BLOB NOT NULL,
        record BLOB NOT NULL
    );
    CREATE INDEX posts_by_author ON posts (author, seq);
    """,
    # 6: comments (signed records; on followers-only posts the text is sealed) and
    # reactions (one row per post, author and emoji; a removal deletes the row).
    """
    CREATE TABLE comments (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL UNIQUE,
        post BLOB NOT NULL,
        record BLOB NOT NULL
    );
    CREATE INDEX comments_by_post ON comments (post, seq);
    CREATE TABLE reactions (
        post BLOB NOT NULL,
        author BLOB NOT NULL,
        emoji TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        record BLOB NOT NULL,
        PRIMARY KEY (post, author, emoji)
    ) WITHOUT ROWID;
    """,
    # operations (relay/admin.py): invite codes, bans (id orders them, so a running relay
    # finds new ones by id), per-identity quota overrides, and the audit log.
    """
    CREATE TABLE invites (
        code TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL DEFAULT 0,
        used_by BLOB,
        used_at INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE bans (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user BLOB NOT NULL UNIQUE,
        at INTEGER NOT NULL,
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE quotas (
        user BLOB PRIMARY KEY,
        blob_quota INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor BLOB,
        action TEXT NOT NULL,
        target BLOB,
        detail TEXT NOT NULL DEFAULT '',
        ip TEXT
    );
    """,
    # 8: stories: sealed, signed records that expire (24 h at most). The sweep and every
    # read go through expires_at indexes; a story's image blob gets the story's expiry.
    """
    CREATE TABLE stories (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL UNIQUE,
        author BLOB NOT NULL,
        expires_at INTEGER NOT NULL,
        blob BLOB,
        record BLOB NOT NULL
    );
    CREATE INDEX stories_by_author ON stories (author, expires_at);
    CREATE INDEX stories_expiry ON stories (expires_at);
    CREATE INDEX blobs_expiry ON blobs (expires_at) WHERE expires_at > 0;
    """,
    # wallets: verified wallet bindings (common.wallets), one per address.
    """
    CREATE TABLE wallet_links (
        address TEXT PRIMARY KEY,
        user BLOB NOT NULL,
        issued_at INTEGER NOT NULL,
        record BLOB NOT NULL
    );
    CREATE INDEX wallet_links_by_user ON wallet_links (user, issued_at);
    """,
    # trust (issue 12): repeated failures are one audit row with a count, and who has
    # sent a 1:1 message to whom (presence is shown to those only, docs/protocol.md).
    # The contacts of the messages still queued are known, older ones are not.
    """
    ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE contacts (
        user BLOB NOT NULL,
        peer BLOB NOT NULL,
        PRIMARY KEY (user, peer)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO contacts (user, peer) SELECT DISTINCT sender, recipient FROM messages;
    """,
    # devices (issue 16): each account's signed device list, and which account lists
    # which device (a device is in at most one account).
    """
    CREATE TABLE device_lists (
        account BLOB PRIMARY KEY,
        version INTEGER NOT NULL,
        record BLOB NOT NULL
    );
    CREATE TABLE devices (
        device BLOB PRIMARY KEY,
        account BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX devices_by_account ON devices (account);
    CREATE TABLE group_device_cursors (
        grp BLOB NOT NULL,
        device BLOB NOT NULL,
        cursor INTEGER NOT NULL,
        PRIMARY KEY (device, grp)
    ) WITHOUT ROWID;
    """,
    # privacy (issue 17): who may send a user sealed messages (docs/protocol.md §5.10): the
    # SHA-256 verifier of the user's access key (empty: none), or anyone. (New dedupe rows
    # hold a digest of (sender, msg), relay/storage/dedupe.py; the older ones, which name
    # their sender, age out within the dedupe window, 7 days.)
    """
    CREATE TABLE sealed_access (
        user BLOB PRIMARY KEY,
        verifier BLOB NOT NULL,
        anyone INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # linking (issue 16): the device-linking rendezvous (docs/protocol.md §6E), in the
    # store so that every node sharing it sees a slot; expires_at in ms.
    """
    CREATE TABLE link_slots (
        slot BLOB PRIMARY KEY,
        owner BLOB NOT NULL,
        expires_at INTEGER NOT NULL,
        blob BLOB NOT NULL
    );
    CREATE INDEX link_slots_by_owner ON link_slots (owner);
    CREATE INDEX link_slots_by_expiry ON link_slots (expires_at);
    """,
    # issue 19: the dedupe keys of the latest sends, appended in the order they were
    # stored, and folded into `sent` in key order a range at a time (sqlite/sent_log.py):
    # a random 48-byte key inserted into `sent` at each commit dirtied a page of its own.
    """
    CREATE TABLE sent_log (
        sender BLOB NOT NULL,
        msg_id BLOB NOT NULL,
        seq INTEGER NOT NULL,
        at INTEGER NOT NULL
    );
    """,
)


async def migrate(db: aiosqlite.Connection, path: Path) -> None:
    """Bring ``db`` to the newest schema; RuntimeError if it is newer than this relay."""
    rows = await db.execute_fetchall("PRAGMA user_version")
    version = next(iter(rows))[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"{path} has schema version {version}, newer than this relay ({len(MIGRATIONS)})"
        )
    for target in range(version + 1, len(MIGRATIONS) + 1):
        # executescript would commit on its own; run the statements in one transaction.
        await db.execute("BEGIN IMMEDIATE")
        try:
            for stmt in MIGRATIONS[target - 1].split(";"):
                if stmt.strip():
                    await db.execute(stmt)
            await db.execute(f"PRAGMA user_version={target}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        log.info("migrated %s to schema version %d", path.name, target)
