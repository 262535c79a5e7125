"""The PostgreSQL schema: versioned migrations, applied in order when a store opens.

``schema_version`` holds the number of migrations applied; index i of MIGRATIONS brings
the schema from version i to i + 1, each in one transaction (PostgreSQL's DDL is
transactional, so a migration is all or nothing). Nodes starting at once take turns
under an advisory lock. A migration is only ever appended.

The tables are SQLite's (relay/storage/sqlite/schema.py) in PostgreSQL's types, with
``user_id`` for SQLite's ``user`` (a reserved word here), and blob bytes kept in the
database (``blob_parts``, ``blob_data``: blob_bytes.py), so every node serves every blob.
"""

from __future__ import annotations

import logging
from typing import Final

import asyncpg

__all__ = ["MIGRATIONS", "RECOUNT_QUEUES", "migrate", "SchemaTooNew"]

log = logging.getLogger("tenchat.relay.storage")

_MIGRATION_LOCK: Final = 0x74656E6368617431  # "tenchat1": one migrating node at a time

# The queue sizes counted from the queued rows (by the migration that adds the table, and
# after an import, relay/storage/postgres/importer.py).
RECOUNT_QUEUES: Final = (
    "INSERT INTO queue_sizes (recipient, sender, taken, messages, bytes) SELECT recipient,"
    " sender, false, count(*), sum(length(body)) FROM messages GROUP BY recipient, sender"
)

MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE handles (
        handle text PRIMARY KEY,
        user_id bytea NOT NULL UNIQUE,
        sig bytea NOT NULL,
        at bigint NOT NULL
    );
    CREATE TABLE signed_prekeys (
        user_id bytea PRIMARY KEY,
        key_id bigint NOT NULL,
        pub bytea NOT NULL,
        sig bytea NOT NULL,
        at bigint NOT NULL
    );
    CREATE TABLE one_time_prekeys (
        user_id bytea NOT NULL,
        key_id bigint NOT NULL,
        pub bytea NOT NULL,
        PRIMARY KEY (user_id, key_id)
    );
    -- One sequence for every queue: a seq names one message (acks name seqs).
    CREATE SEQUENCE message_seq;
    CREATE TABLE messages (
        seq bigint PRIMARY KEY,
        recipient bytea NOT NULL,
        sender bytea NOT NULL,
        msg_id bytea NOT NULL,
        at bigint NOT NULL,
        body bytea NOT NULL,
        expires_at bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_queue ON messages (recipient, seq);
    CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at > 0;
    CREATE TABLE sent (
        sender bytea NOT NULL,
        msg_id bytea NOT NULL,
        seq bigint NOT NULL,
        at bigint NOT NULL,
        PRIMARY KEY (sender, msg_id)
    );
    CREATE INDEX sent_at ON sent (at);
    CREATE TABLE contacts (
        user_id bytea NOT NULL,
        peer bytea NOT NULL,
        PRIMARY KEY (user_id, peer)
    );
    -- gseqs come from one sequence, taken under the group's row lock (last_gseq).
    CREATE SEQUENCE group_seq;
    CREATE TABLE groups (
        id bytea PRIMARY KEY,
        version bigint NOT NULL,
        head bytea NOT NULL,
        name text NOT NULL,
        topic text NOT NULL DEFAULT '',
        avatar bytea NOT NULL DEFAULT '',
        announce boolean NOT NULL DEFAULT false,
        last_gseq bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE group_members (
        grp bytea NOT NULL,
        user_id bytea NOT NULL,
        role text NOT NULL,
        cursor bigint NOT NULL,
        PRIMARY KEY (grp, user_id)
    );
    CREATE INDEX group_members_by_user ON group_members (user_id, grp);
    CREATE TABLE group_records (
        grp bytea NOT NULL,
        version bigint NOT NULL,
        record bytea NOT NULL,
        PRIMARY KEY (grp, version)
    );
    CREATE TABLE group_log (
        gseq bigint PRIMARY KEY,
        grp bytea NOT NULL,
        sender bytea NOT NULL,
        msg bytea NOT NULL,
        at bigint NOT NULL,
        body bytea NOT NULL,
        change boolean NOT NULL DEFAULT false,
        expires_at bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX group_log_by_group ON group_log (grp, gseq);
    CREATE INDEX group_log_expiry ON group_log (expires_at) WHERE expires_at > 0;
    CREATE TABLE group_sent (
        grp bytea NOT NULL,
        sender bytea NOT NULL,
        msg bytea NOT NULL,
        gseq bigint NOT NULL,
        at bigint NOT NULL,
        PRIMARY KEY (grp, sender, msg)
    );
    CREATE INDEX group_sent_at ON group_sent (at);
    CREATE TABLE blocks (
        user_id bytea NOT NULL,
        blocked bytea NOT NULL,
        PRIMARY KEY (user_id, blocked)
    );
    CREATE TABLE privacy (
        user_id bytea PRIMARY KEY,
        hide_presence boolean NOT NULL
    );
    CREATE TABLE blobs (
        hash bytea PRIMARY KEY,
        owner bytea NOT NULL,
        size bigint NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX blobs_by_owner ON blobs (owner);
    CREATE INDEX blobs_expiry ON blobs (expires_at) WHERE expires_at > 0;
    CREATE TABLE blob_uploads (
        user_id bytea NOT NULL,
        hash bytea NOT NULL,
        size bigint NOT NULL,
        started_at bigint NOT NULL,
        PRIMARY KEY (user_id, hash)
    );
    CREATE TABLE profiles (
        user_id bytea PRIMARY KEY,
        record bytea NOT NULL,
        updated_at bigint NOT NULL,
        private boolean NOT NULL DEFAULT false
    );
    CREATE TABLE follows (
        follower bytea NOT NULL,
        target bytea NOT NULL,
        record bytea NOT NULL,
        approval bytea,
        state integer NOT NULL,
        at bigint NOT NULL,
        PRIMARY KEY (follower, target)
    );
    CREATE INDEX follows_by_target ON follows (target, state, at);
    CREATE INDEX follows_by_follower ON follows (follower, state, at);
    CREATE TABLE posts (
        seq bigserial PRIMARY KEY,
        id bytea NOT NULL UNIQUE,
        author bytea NOT NULL,
        record bytea NOT NULL
    );
    CREATE INDEX posts_by_author ON posts (author, seq);
    CREATE TABLE comments (
        seq bigserial PRIMARY KEY,
        id bytea NOT NULL UNIQUE,
        post bytea NOT NULL,
        record bytea NOT NULL
    );
    CREATE INDEX comments_by_post ON comments (post, seq);
    CREATE TABLE reactions (
        post bytea NOT NULL,
        author bytea NOT NULL,
        emoji text NOT NULL,
        created_at bigint NOT NULL,
        record bytea NOT NULL,
        PRIMARY KEY (post, author, emoji)
    );
    CREATE TABLE invites (
        code text PRIMARY KEY,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL DEFAULT 0,
        used_by bytea,
        used_at bigint
    );
    CREATE TABLE bans (
        id bigserial PRIMARY KEY,
        user_id bytea NOT NULL UNIQUE,
        at bigint NOT NULL,
        reason text NOT NULL DEFAULT ''
    );
    CREATE TABLE quotas (
        user_id bytea PRIMARY KEY,
        blob_quota bigint NOT NULL
    );
    CREATE TABLE audit (
        id bigserial PRIMARY KEY,
        at bigint NOT NULL,
        actor bytea,
        action text NOT NULL,
        target bytea,
        detail text NOT NULL DEFAULT '',
        ip text,
        count bigint NOT NULL DEFAULT 1
    );
    CREATE TABLE stories (
        seq bigserial PRIMARY KEY,
        id bytea NOT NULL UNIQUE,
        author bytea NOT NULL,
        expires_at bigint NOT NULL,
        blob bytea,
        record bytea NOT NULL
    );
    CREATE INDEX stories_by_author ON stories (author, expires_at);
    CREATE INDEX stories_expiry ON stories (expires_at);
    CREATE TABLE wallet_links (
        address text PRIMARY KEY,
        user_id bytea NOT NULL,
        issued_at bigint NOT NULL,
        record bytea NOT NULL
    );
    CREATE INDEX wallet_links_by_user ON wallet_links (user_id, issued_at);
    """,
    # 2: blob bytes (relay/storage/postgres/blob_bytes.py): chunks of uploads in progress
    # (`at`: when written, for the retention of strays) and of stored blobs.
    """
    CREATE TABLE blob_parts (
        user_id bytea NOT NULL,
        hash bytea NOT NULL,
        pos bigint NOT NULL,
        data bytea NOT NULL,
        at bigint NOT NULL,
        PRIMARY KEY (user_id, hash, pos)
    );
    CREATE TABLE blob_data (
        hash bytea NOT NULL,
        pos bigint NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (hash, pos)
    );
    ALTER TABLE blob_data ALTER COLUMN data SET STORAGE EXTERNAL;
    ALTER TABLE blob_parts ALTER COLUMN data SET STORAGE EXTERNAL;
    """,
    # 3: shared rate limits (rates.py): one token bucket per kind and key, spent by every
    # node. Unlogged: no WAL, cheap to update; a crash forgets it (every bucket full).
    """
    CREATE UNLOGGED TABLE rate_buckets (
        kind text NOT NULL,
        key bytea NOT NULL,
        rate double precision NOT NULL,  -- tokens a second, as last reported
        burst double precision NOT NULL,
        tokens double precision NOT NULL,  -- at `stamp`
        stamp bigint NOT NULL,  -- ms, the database's clock
        node text NOT NULL,  -- the node that reported last
        shared_at bigint NOT NULL DEFAULT 0,  -- when another node than the one before did
        PRIMARY KEY (kind, key)
    );
    """,
    # 4: devices (issue 16): each account's signed device list, and which account lists
    # which device (a device is in at most one account).
    """
    CREATE TABLE device_lists (
        account bytea PRIMARY KEY,
        version bigint NOT NULL,
        record bytea NOT NULL
    );
    CREATE TABLE devices (
        device bytea PRIMARY KEY,
        account bytea NOT NULL
    );
    CREATE INDEX devices_by_account ON devices (account);
    CREATE TABLE group_device_cursors (
        grp bytea NOT NULL,
        device bytea NOT NULL,
        cursor bigint NOT NULL,
        PRIMARY KEY (device, grp)
    );
    """,
    # 5: privacy (issue 17): who may send a user sealed messages (docs/protocol.md §5.10).
    # (New dedupe rows hold a digest of (sender, msg), relay/storage/dedupe.py; the older
    # ones age out within the dedupe window, 7 days.)
    """
    CREATE TABLE sealed_access (
        user_id bytea PRIMARY KEY,
        verifier bytea NOT NULL,
        anyone boolean NOT NULL
    );
    """,
    # 6: the size of each queue, per sender (queues.py): what the queue caps read, instead
    # of counting the queued rows (and every acked one not yet vacuumed) on each send.
    f"""
    -- Two rows a pair: what sends added (taken = false) and, negative, what deletes took.
    CREATE TABLE queue_sizes (
        recipient bytea NOT NULL,
        sender bytea NOT NULL,
        taken boolean NOT NULL,
        messages bigint NOT NULL,
        bytes bigint NOT NULL,
        PRIMARY KEY (recipient, sender, taken)
    );
    {RECOUNT_QUEUES};
    """,
    # 7: the device-linking rendezvous (docs/protocol.md §6E), here so that every node
    # sees a slot whichever node the other device reached; expires_at in ms.
    """
    CREATE TABLE link_slots (
        slot bytea PRIMARY KEY,
        owner bytea NOT NULL,
        expires_at bigint NOT NULL,
        blob bytea NOT NULL
    );
    CREATE INDEX link_slots_by_owner ON link_slots (owner);
    CREATE INDEX link_slots_by_expiry ON link_slots (expires_at);
    """,
)


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer relay."""


async def migrate(conn: asyncpg.Connection, schema: str | None = None) -> None:
    """Bring the database (``schema``, if given, created if missing) to the newest
    version; SchemaTooNew if it is newer than this relay."""
    where = f"schema {schema}" if schema else "the database"
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        if schema:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        version = await conn.fetchval("SELECT version FROM schema_version")
        if version is None:
            await conn.execute("INSERT INTO schema_version VALUES (0)")
            version = 0
    if version > len(MIGRATIONS):
        raise SchemaTooNew(f"{where} has schema version {version}, newer than this relay"
                           f" ({len(MIGRATIONS)})")
    for target in range(version + 1, len(MIGRATIONS) + 1):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            if await conn.fetchval("SELECT version FROM schema_version") >= target:
                continue  # another node got here first
            await conn.execute(MIGRATIONS[target - 1])
            await conn.execute("UPDATE schema_version SET version = $1", target)
        log.info("migrated %s to schema version %d", where, target)
