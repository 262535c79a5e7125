"""The relay's storage: one interface, and its SQLite implementation.

All writes go through one writer task that commits in batches (group commit):
it takes everything queued (up to ``batch_max``), applies it in one
transaction, commits, and only then resolves the callers' futures — so a
``stored`` answer always follows the commit that holds the message. Reads use
a second connection and never wait for the writer (WAL).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import aiosqlite

from tenchat.common import groups as gr
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Deliver, GroupDeliver, GroupSummary, OneTimePrekey, SignedPrekey
from tenchat.common.stories import STORY_TTL_MS

__all__ = [
    "Store", "SQLiteStore", "HandleRecord", "BundleRecord", "Stored", "CommitListener",
    "GroupListener", "MembersChanged", "GroupEntry", "GroupHead", "BlobBegun",
    "BatchListener", "RetentionSwept", "storage_error", "SweptStories",
]

log = logging.getLogger("tenchat.relay.store")

T = TypeVar("T")

STORY_CLOCK_SLACK_MS: Final = 10 * 60 * 1000  # how far ahead of ours an author's clock may be
DEDUPE_WINDOW_MS: Final = 7 * 24 * 3600 * 1000  # how long a retry is recognised after storing
_PRUNE_EVERY_MS: Final = 3600 * 1000
_DISK_ERRNOS: Final = frozenset({28, 27, 122, 5})  # ENOSPC, EFBIG, EDQUOT, EIO


@dataclass(frozen=True, slots=True)
class HandleRecord:
    handle: str
    user: bytes
    sig: bytes


@dataclass(frozen=True, slots=True)
class BundleRecord:
    spk: SignedPrekey
    otk: OneTimePrekey | None
    otk_count: int  # one-time prekeys left after this fetch


@dataclass(frozen=True, slots=True)
class Stored:
    seq: int
    at: int


@dataclass(frozen=True, slots=True)
class GroupHead:
    """The caller's view of a group for a read: its role, and the group's version."""

    role: str
    version: int


@dataclass(frozen=True, slots=True)
class MembersChanged:
    """Committed: these users' membership of ``group`` changed (role None: no longer a
    member). A user who became a member has ``cursor`` (just before the change's entry)."""

    group: bytes
    roles: dict[bytes, str | None]
    cursor: int


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """Committed: a new entry in a group's log (0: never expires)."""

    item: GroupDeliver
    expires_at: int


@dataclass(frozen=True, slots=True)
class BlobBegun:
    """Answer to a blob_begin write: the blob is ``stored`` already (by anyone), or an
    upload of it by this user is in progress (``new``: just started, nothing received)."""

    stored: bool
    new: bool
    size: int


@dataclass(frozen=True, slots=True)
class SweptStories:
    """What one story sweep transaction deleted."""

    stories: int  # story rows
    blobs: list[bytes]  # hashes of blob rows (expired story images)

    @property
    def rows(self) -> int:
        return max(self.stories, len(self.blobs))


# Called synchronously, right after a commit, with the stored messages in seq order
# as (recipient, message, expires_at).
CommitListener = Callable[[list[tuple[bytes, Deliver, int, bool]]], None]
# Called synchronously, right after a commit, with the group events in commit order.
GroupListener = Callable[[list["MembersChanged | GroupEntry"]], None]


# Called after each write transaction with (seconds it took, ops in it, committed or not).
BatchListener = Callable[[float, int, bool], None]


@dataclass(frozen=True, slots=True)
class RetentionSwept:
    """What one retention transaction deleted; ``uploads`` are (user, blob) of the expired
    unfinished uploads, whose partial files the caller removes."""

    messages: int
    group_entries: int
    uploads: list[tuple[bytes, bytes]]
    audit: int = 0


def storage_error(exc: BaseException) -> ProtocolError | None:
    """storage_full for a write the disk refused (full, over a size limit, I/O error); the
    batch was rolled back. None for anything else (a bug)."""
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) is not None:
        primary = exc.sqlite_errorcode & 0xFF
        if primary in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
            return ProtocolError(ErrorCode.STORAGE_FULL, "the relay cannot write to its disk")
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return ProtocolError(ErrorCode.STORAGE_FULL, "the relay cannot write to its disk")
    return None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Store(abc.ABC):
    """Storage of handles, prekeys and message queues, with an ``async with`` lifecycle.

    Write methods are plain functions returning a future: calling them queues the
    write in call order; the future resolves after the commit (or raises
    ProtocolError for a refused write, which then changed nothing).
    """

    on_commit: CommitListener | None = None
    on_group_commit: GroupListener | None = None

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Commit everything queued, resolve its futures, then release the storage."""

    # --- reads --------------------------------------------------------------------------

    @abc.abstractmethod
    async def handle_by_name(self, handle: str) -> HandleRecord | None: ...

    @abc.abstractmethod
    async def handle_by_user(self, user: bytes) -> HandleRecord | None: ...

    @abc.abstractmethod
    async def otk_count(self, user: bytes) -> int: ...

    @abc.abstractmethod
    async def user_exists(self, user: bytes) -> bool:
        """True if ``user`` has registered a handle or a signed prekey."""

    @abc.abstractmethod
    async def pending(self, user: bytes, after: int, limit: int) -> list[Deliver]:
        """Up to ``limit`` unexpired queued messages of ``user`` with seq > ``after``,
        ascending."""

    @abc.abstractmethod
    async def is_blocked(self, user: bytes, sender: bytes) -> bool:
        """True if ``user`` blocks ``sender``."""

    @abc.abstractmethod
    async def hide_presence(self, user: bytes) -> bool:
        """The user's ``privacy.hide_presence`` setting."""

    @abc.abstractmethod
    async def member_groups(self, user: bytes) -> dict[bytes, int]:
        """The groups ``user`` is a member of, each with the user's cursor."""

    @abc.abstractmethod
    async def group_summaries(self, user: bytes) -> list[GroupSummary]:
        """The groups ``user`` is a member of, for ``group_list``."""

    @abc.abstractmethod
    async def group_head(self, group: bytes, user: bytes) -> GroupHead | None:
        """``user``'s role in ``group`` and the group's version; None for a non-member."""

    @abc.abstractmethod
    async def group_records(self, group: bytes, after_version: int, limit: int) -> list[bytes]:
        """Up to ``limit`` signed records of ``group`` with version > ``after_version``."""

    @abc.abstractmethod
    async def group_pending(
        self, group: bytes, user: bytes, after: int, limit: int
    ) -> list[GroupDeliver]:
        """Up to ``limit`` unexpired entries of ``group``'s log with gseq > ``after``,
        ascending — none unless ``user`` is a member (read in the same snapshot)."""

    @abc.abstractmethod
    async def blob_size(self, blob: bytes) -> int | None:
        """The size of a stored (fully uploaded, verified) blob; None if there is none."""

    @abc.abstractmethod
    async def blob_upload(self, user: bytes, blob: bytes) -> int | None:
        """The announced size of ``user``'s upload in progress of ``blob``; None if none."""

    @abc.abstractmethod
    async def profile(self, user: bytes) -> bytes | None:
        """The newest signed profile record of ``user``; None if there is none."""

    @abc.abstractmethod
    async def follow_page(
        self, user: bytes, kind: str, offset: int, limit: int
    ) -> list[tuple[bytes, bytes | None]]:
        """(follow record, approval record) of ``user``'s followers, followings or
        pending requests (``kind``), oldest first."""

    @abc.abstractmethod
    async def feed_page(
        self, caller: bytes, authors: list[bytes] | None, before: bytes | None, limit: int
    ) -> list[bytes]:
        """Post records by ``authors`` (None: whom ``caller`` follows, and ``caller``),
        newest first, older than post ``before`` if given."""

    # --- writes -------------------------------------------------------------------------

    @abc.abstractmethod
    def register(self, user: bytes, handle: str, sig: bytes) -> asyncio.Future[HandleRecord]:
        """Bind a canonical handle; handle_taken / forbidden (already holds another)."""

    @abc.abstractmethod
    def publish_prekeys(
        self, user: bytes, spk: SignedPrekey | None, otks: Sequence[OneTimePrekey]
    ) -> asyncio.Future[int]:
        """Replace the signed prekey and/or add one-time prekeys; the new otk count."""

    @abc.abstractmethod
    def take_bundle(
        self, user: bytes, with_otk: bool = True
    ) -> asyncio.Future[BundleRecord | None]:
        """The signed prekey and one one-time prekey, removed (none if not ``with_otk``);
        None without a spk."""

    @abc.abstractmethod
    def enqueue(
        self, recipient: bytes, sender: bytes, msg_id: bytes, body: bytes, expires_at: int = 0,
        conv: bool = False,
    ) -> asyncio.Future[Stored]:
        """Queue a message; a retry with the same (sender, msg_id) gets the original.
        ``conv`` (the user wrote it) makes ``recipient`` a contact of ``sender``'s."""

    @abc.abstractmethod
    def ack(self, user: bytes, seqs: Sequence[int]) -> asyncio.Future[None]:
        """Delete messages of ``user``'s queue; forbidden (nothing deleted) if any seq
        is in another identity's queue. Seqs in no queue (already acked) are ignored."""

    @abc.abstractmethod
    def group_change(
        self, change: gr.GroupChange, record: bytes
    ) -> asyncio.Future[Stored]:
        """Check (common.groups.check_change) and apply a verified change; append it to the
        group's log. ProtocolError forbidden / protocol / not_found / malformed."""

    @abc.abstractmethod
    def group_post(
        self, group: bytes, sender: bytes, msg_id: bytes, body: bytes, expires_at: int
    ) -> asyncio.Future[Stored]:
        """Append a message to a group's log (forbidden unless the sender may post); a
        retry with the same (group, sender, msg_id) gets the original."""

    @abc.abstractmethod
    def group_ack(self, user: bytes, group: bytes, upto: int) -> asyncio.Future[None]:
        """Move ``user``'s cursor forward to ``upto`` (at most the log's end); forbidden
        for a non-member."""

    @abc.abstractmethod
    def set_block(self, user: bytes, blocked: bytes, on: bool) -> asyncio.Future[None]:
        """Add ``blocked`` to (or remove it from) ``user``'s block list."""

    @abc.abstractmethod
    def set_privacy(self, user: bytes, hide_presence: bool) -> asyncio.Future[None]: ...

    @abc.abstractmethod
    def blob_begin(
        self, user: bytes, blob: bytes, size: int, quota: int
    ) -> asyncio.Future[BlobBegun]:
        """Start (or find) ``user``'s upload of ``blob``. quota_exceeded if the user's stored
        blobs plus uploads in progress plus ``size`` would pass ``quota``; protocol if an
        upload of it with another size is in progress."""

    @abc.abstractmethod
    def blob_commit(self, user: bytes, blob: bytes, size: int) -> asyncio.Future[None]:
        """Record a verified blob (its file already in place) and end the upload."""

    @abc.abstractmethod
    def blob_abort(self, user: bytes, blob: bytes) -> asyncio.Future[None]:
        """Forget ``user``'s upload of ``blob`` (e.g. it did not match its hash)."""

    @abc.abstractmethod
    def set_profile(
        self, user: bytes, record: bytes, updated_at: int, private: bool
    ) -> asyncio.Future[bytes]:
        """Keep ``record`` if it is newer (``updated_at``) than the stored one; the record
        now held."""

    @abc.abstractmethod
    def follow(self, follower: bytes, target: bytes, record: bytes) -> asyncio.Future[str]:
        """Store a verified follow: "following" (a public account, or already approved)
        or "requested" (a private account)."""

    @abc.abstractmethod
    def approve(self, owner: bytes, follower: bytes, record: bytes) -> asyncio.Future[None]:
        """Turn ``follower``'s pending request to ``owner`` into a follow; not_found if
        there is no request."""

    @abc.abstractmethod
    def unfollow(self, follower: bytes, target: bytes) -> asyncio.Future[bool]:
        """Delete the follow (or request) of ``follower`` to ``target``; True if there was
        one."""

    @abc.abstractmethod
    def put_post(self, author: bytes, post: bytes, record: bytes,
                 public: bool) -> asyncio.Future[None]:
        """Store a verified post record (id ``post``); forbidden if a private account's
        post is public; idempotent for the same record, forbidden for another one with
        the same id."""

    @abc.abstractmethod
    def put_comment(self, post: bytes, post_author: bytes, comment: bytes,
                    record: bytes) -> asyncio.Future[None]:
        """Store a verified comment record (id ``comment``) on post ``post``; not_found
        unless ``post`` is stored with author ``post_author``; idempotent for the same
        record, forbidden for another one with the same id."""

    @abc.abstractmethod
    def put_reaction(self, post: bytes, post_author: bytes, author: bytes, emoji: str,
                     created_at: int, removed: bool, record: bytes) -> asyncio.Future[None]:
        """Replace ``author``'s reaction ``emoji`` on ``post`` (or delete it, ``removed``)
        unless the stored one is newer; not_found as for put_comment."""

    @abc.abstractmethod
    async def post_extras(self, posts: list[bytes]) -> list[tuple[int, dict[str, int]]]:
        """(comment count, reaction counts by emoji) of each post, in order."""

    @abc.abstractmethod
    async def comment_page(self, post: bytes, before: bytes | None,
                           limit: int) -> list[bytes]:
        """Comment records on ``post``, newest first, older than comment ``before``."""

    @abc.abstractmethod
    def custom_write(
        self, fn: Callable[[Any], Awaitable[T]]
    ) -> asyncio.Future[T]:
        """Run ``fn(connection)`` in the writer's next transaction (operations code in
        relay/admin.py); its result, or the ProtocolError it raised before writing."""

    @abc.abstractmethod
    async def custom_read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one read-only statement on the reader connection."""

    @abc.abstractmethod
    def put_story(self, author: bytes, story: bytes, expires_at: int, blob: bytes | None,
                  record: bytes) -> asyncio.Future[None]:
        """Store a verified story record (id ``story``); expired if ``expires_at`` has
        passed; not_found unless ``blob`` (if given) is a stored blob of ``author``, which
        then expires with the story; idempotent for the same record, forbidden for another
        one with the same id."""

    @abc.abstractmethod
    async def story_page(self, caller: bytes, authors: list[bytes] | None,
                         limit: int) -> list[bytes]:
        """Unexpired story records by ``authors`` (None: whom ``caller`` follows, and
        ``caller``), newest first."""

    @abc.abstractmethod
    def sweep_stories(self, now: int, limit: int) -> asyncio.Future[SweptStories]:
        """Delete up to ``limit`` expired stories and up to ``limit`` expired blob rows in
        one short transaction, each through its expires_at index; what went (the blobs'
        files are the caller's to remove, after this commit)."""

    @abc.abstractmethod
    async def wallet_links(self, user: bytes) -> list[bytes]:
        """The wallet binding records of ``user``, oldest first."""

    @abc.abstractmethod
    async def wallet_owner(self, address: str) -> bytes | None:
        """The identity the wallet ``address`` (EIP-55) is linked to; None if none."""

    @abc.abstractmethod
    def put_wallet_link(self, address: str, user: bytes, issued_at: int,
                        record: bytes) -> asyncio.Future[None]:
        """Store a verified binding of ``address`` to ``user``, replacing an older one of
        the address (to any identity); forbidden if the stored one is newer."""

    @abc.abstractmethod
    def wallet_unlink(self, user: bytes, address: str) -> asyncio.Future[bool]:
        """Delete ``user``'s binding of ``address``; True if there was one."""

    @abc.abstractmethod
    def sweep(self, now: int, limit: int) -> asyncio.Future[int]:
        """Delete up to ``limit`` expired messages and up to ``limit`` expired group
        entries in one transaction; how many rows went (the larger of the two counts)."""

    @abc.abstractmethod
    def retention_sweep(
        self, queue_before: int, uploads_before: int, limit: int, audit_before: int = 0
    ) -> asyncio.Future[RetentionSwept]:
        """Delete old undelivered messages and group log entries, expired unfinished
        uploads and old audit rows (see SQLiteStore.retention_sweep)."""

    @abc.abstractmethod
    def audit_insert(self, row: tuple[Any, ...]) -> asyncio.Future[int]:
        """Write an audit row (at, actor, action, target, detail, ip, count); its id."""

    @abc.abstractmethod
    def audit_add(self, row_id: int, count: int) -> asyncio.Future[None]:
        """Add ``count`` to the count of audit row ``row_id`` (repeats of it)."""

    @abc.abstractmethod
    async def contacts_of(self, users: Sequence[bytes], peer: bytes) -> set[bytes]:
        """Those of ``users`` that have sent ``peer`` a 1:1 message (and don't block
        ``peer``): the ones whose presence ``peer`` may see."""

    @abc.abstractmethod
    def probe(self) -> asyncio.Future[None]:
        """A write through the writer; resolves once committed (health checks)."""

    @abc.abstractmethod
    async def stats(self) -> dict[str, int]:
        """Row counts for metrics."""

    on_batch: BatchListener | None = None
    last_write_error: str | None = None
    write_queue_depth: int = 0


# --- SQLite ------------------------------------------------------------------------------

# Versioned migrations: index i brings the schema from user_version i to i + 1.
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
)


@dataclass(slots=True)
class _Op:
    fut: asyncio.Future[Any]


@dataclass(slots=True)
class _Send(_Op):
    recipient: bytes
    sender: bytes
    msg_id: bytes
    body: bytes
    expires_at: int = 0
    conv: bool = False  # a message the user wrote: the recipient becomes a contact


@dataclass(slots=True)
class _Ack(_Op):
    user: bytes
    seqs: Sequence[int]


@dataclass(slots=True)
class _Register(_Op):
    user: bytes
    handle: str
    sig: bytes


@dataclass(slots=True)
class _Publish(_Op):
    user: bytes
    spk: SignedPrekey | None
    otks: Sequence[OneTimePrekey]


@dataclass(slots=True)
class _TakeBundle(_Op):
    user: bytes
    with_otk: bool = True


@dataclass(slots=True)
class _GroupChange(_Op):
    change: gr.GroupChange
    record: bytes


@dataclass(slots=True)
class _GroupPost(_Op):
    group: bytes
    sender: bytes
    msg_id: bytes
    body: bytes
    expires_at: int


@dataclass(slots=True)
class _GroupAck(_Op):
    user: bytes
    group: bytes
    upto: int


@dataclass(slots=True)
class _BulkMembers(_Op):
    group: bytes
    users: Sequence[bytes]
    role: str


@dataclass(slots=True)
class _Block(_Op):
    user: bytes
    blocked: bytes
    on: bool


@dataclass(slots=True)
class _Privacy(_Op):
    user: bytes
    hide_presence: bool


@dataclass(slots=True)
class _BlobBegin(_Op):
    user: bytes
    blob: bytes
    size: int
    quota: int


@dataclass(slots=True)
class _BlobCommit(_Op):
    user: bytes
    blob: bytes
    size: int


@dataclass(slots=True)
class _BlobAbort(_Op):
    user: bytes
    blob: bytes


@dataclass(slots=True)
class _ProfileSet(_Op):
    user: bytes
    record: bytes
    updated_at: int
    private: bool


@dataclass(slots=True)
class _Follow(_Op):
    follower: bytes
    target: bytes
    record: bytes


@dataclass(slots=True)
class _Approve(_Op):
    owner: bytes
    follower: bytes
    record: bytes


@dataclass(slots=True)
class _Unfollow(_Op):
    follower: bytes
    target: bytes


@dataclass(slots=True)
class _PostPut(_Op):
    author: bytes
    post: bytes
    record: bytes
    public: bool


@dataclass(slots=True)
class _CommentPut(_Op):
    post: bytes
    post_author: bytes
    comment: bytes
    record: bytes


@dataclass(slots=True)
class _ReactPut(_Op):
    post: bytes
    post_author: bytes
    author: bytes
    emoji: str
    created_at: int
    removed: bool
    record: bytes


@dataclass(slots=True)
class _Custom(_Op):
    # An operation defined outside the store (relay/admin.py): fn(db) inside the writer's
    # transaction. It must check before it writes: a ProtocolError it raises refuses only
    # this operation, and the batch commits.
    fn: Callable[[aiosqlite.Connection], Awaitable[Any]]


@dataclass(slots=True)
class _StoryPut(_Op):
    author: bytes
    story: bytes
    expires_at: int
    blob: bytes | None
    record: bytes


@dataclass(slots=True)
class _WalletLink(_Op):
    address: str
    user: bytes
    issued_at: int
    record: bytes


@dataclass(slots=True)
class _StorySweep(_Op):
    now: int
    limit: int


@dataclass(slots=True)
class _WalletUnlink(_Op):
    user: bytes
    address: str


@dataclass(slots=True)
class _Sweep(_Op):
    now: int
    limit: int


@dataclass(slots=True)
class _Retention(_Op):
    queue_before: int
    uploads_before: int
    limit: int
    audit_before: int = 0


@dataclass(slots=True)
class _Probe(_Op):
    pass


@dataclass(slots=True)
class _Batch:
    """What one transaction produced: answers to hand out and messages to push."""

    results: list[tuple[asyncio.Future[Any], Any]] = field(default_factory=list)
    # (recipient, item, expires_at, conv: the user wrote it, so it makes a contact)
    stored: list[tuple[bytes, Deliver, int, bool]] = field(default_factory=list)
    group_events: list[MembersChanged | GroupEntry] = field(default_factory=list)


_STOP: Final = object()


def _chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class SQLiteStore(Store):
    """One SQLite file in WAL mode; one writer connection, one reader connection."""

    def __init__(
        self,
        path: Path,
        *,
        sync: str = "full",
        batch_max: int = 2000,
        otk_max: int = 500,
        queue_max: int = 0,
        queue_bytes_max: int = 0,
        queue_share: int = 100,
        reactions_max: int = 0,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.path = path
        self.queue_max = queue_max  # messages queued per recipient; 0 = no limit
        self.queue_bytes_max = queue_bytes_max  # body bytes queued per recipient; 0 = no limit
        # The part (percent) of those one sender may fill: a sender past it gets
        # queue_share, so one sender can't fill a recipient's queue for everyone else.
        self.queue_share = queue_share
        self.share_max = -(-queue_max * queue_share // 100) if queue_share < 100 else 0
        self.share_bytes_max = queue_bytes_max * queue_share // 100 if queue_share < 100 else 0
        self.reactions_max = reactions_max  # reactions per author per post; 0 = no limit
        self.sync = sync  # "full" or "normal", see Config.sync
        self.batch_max = batch_max
        self.otk_max = otk_max
        self._clock = clock
        self._db: aiosqlite.Connection | None = None  # the writer's
        self._rdb: aiosqlite.Connection | None = None  # reads
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._next_seq = 0
        self._next_gseq = 0
        self._last_prune = 0
        # Users with at least one block (an over-estimate after unblocks): only sends to
        # them need a look-up in `blocks`.
        self._blockers: set[bytes] = set()
        # Identities seen to exist; nothing is ever unregistered, so this only grows.
        self._known: set[bytes] = set()
        self.on_batch: BatchListener | None = None
        self.last_write_error: str | None = None  # of the last write batch; None if it committed
        # Queue lengths of recipients sent to lately (for queue_max). Only the writer inserts,
        # so a count can only be too high (after deletes it did not see): a full queue is
        # counted again before a send is refused.
        self._queued: dict[bytes, list[int]] = {}  # recipient -> [messages, body bytes]
        # The same per (recipient, sender), for queue_share.
        self._queued_from: dict[tuple[bytes, bytes], list[int]] = {}
        # (user, peer) pairs known to be in `contacts` (bounded; a miss is an INSERT OR
        # IGNORE, so it only costs a statement).
        self._contacts: set[tuple[bytes, bytes]] = set()

    @property
    def write_queue_depth(self) -> int:
        """Writes waiting for the writer (not counting the batch being committed)."""
        return self._queue.qsize()

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        self._db = db
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(f"PRAGMA synchronous={'FULL' if self.sync == 'full' else 'NORMAL'}")
        await db.execute("PRAGMA busy_timeout=5000")
        try:
            await self._migrate(db)
        except BaseException:
            await db.close()  # its thread would keep the process alive
            self._db = None
            raise
        rows = await db.execute_fetchall(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),"
            " coalesce((SELECT max(seq) FROM messages), 0))"
        )
        self._next_seq = next(iter(rows))[0]
        # last_gseq never goes down, even when the sweep deletes a log's newest entries.
        rows = await db.execute_fetchall(
            "SELECT max(coalesce((SELECT max(gseq) FROM group_log), 0),"
            " coalesce((SELECT max(last_gseq) FROM groups), 0))"
        )
        self._next_gseq = next(iter(rows))[0]
        rows = await db.execute_fetchall("SELECT DISTINCT user FROM blocks")
        self._blockers = {user for (user,) in rows}
        self._rdb = await aiosqlite.connect(self.path, isolation_level=None)
        await self._rdb.execute("PRAGMA busy_timeout=5000")
        await self._rdb.execute("PRAGMA query_only=ON")
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        rows = await db.execute_fetchall("PRAGMA user_version")
        version = next(iter(rows))[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema version {version}, newer than this relay"
                f" ({len(MIGRATIONS)})"
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
            log.info("migrated %s to schema version %d", self.path.name, target)

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._queue.put_nowait(_STOP)
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        for conn in (self._rdb, self._db):
            if conn is not None:
                await conn.close()
        self._rdb = self._db = None

    # --- reads --------------------------------------------------------------------------

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        assert self._rdb is not None, "store is not open"
        return list(await self._rdb.execute_fetchall(sql, params))

    async def handle_by_name(self, handle: str) -> HandleRecord | None:
        rows = await self._read("SELECT handle, user, sig FROM handles WHERE handle = ?", (handle,))
        return HandleRecord(*rows[0]) if rows else None

    async def handle_by_user(self, user: bytes) -> HandleRecord | None:
        rows = await self._read("SELECT handle, user, sig FROM handles WHERE user = ?", (user,))
        return HandleRecord(*rows[0]) if rows else None

    async def otk_count(self, user: bytes) -> int:
        rows = await self._read("SELECT count(*) FROM one_time_prekeys WHERE user = ?", (user,))
        return int(rows[0][0])

    async def user_exists(self, user: bytes) -> bool:
        if user in self._known:
            return True
        rows = await self._read(
            "SELECT EXISTS (SELECT 1 FROM handles WHERE user = ?)"
            " OR EXISTS (SELECT 1 FROM signed_prekeys WHERE user = ?)",
            (user, user),
        )
        if rows[0][0]:
            self._known.add(user)
            return True
        return False

    async def pending(self, user: bytes, after: int, limit: int) -> list[Deliver]:
        rows = await self._read(
            "SELECT seq, msg_id, sender, at, body FROM messages"
            " WHERE recipient = ? AND seq > ? AND (expires_at = 0 OR expires_at > ?)"
            " ORDER BY seq LIMIT ?",
            (user, after, self._clock(), limit),
        )
        return [Deliver(seq=s, msg=m, sender=f, at=a, body=b) for s, m, f, a, b in rows]

    async def is_blocked(self, user: bytes, sender: bytes) -> bool:
        if user not in self._blockers:
            return False
        rows = await self._read(
            "SELECT 1 FROM blocks WHERE user = ? AND blocked = ?", (user, sender)
        )
        return bool(rows)

    async def hide_presence(self, user: bytes) -> bool:
        rows = await self._read("SELECT hide_presence FROM privacy WHERE user = ?", (user,))
        return bool(rows and rows[0][0])

    async def member_groups(self, user: bytes) -> dict[bytes, int]:
        rows = await self._read("SELECT grp, cursor FROM group_members WHERE user = ?", (user,))
        return {grp: cursor for grp, cursor in rows}

    async def group_summaries(self, user: bytes) -> list[GroupSummary]:
        rows = await self._read(
            "SELECT m.grp, g.version, m.role, m.cursor, g.last_gseq FROM group_members AS m"
            " JOIN groups AS g ON g.id = m.grp WHERE m.user = ? ORDER BY m.grp",
            (user,),
        )
        return [GroupSummary(*row) for row in rows]

    async def group_head(self, group: bytes, user: bytes) -> GroupHead | None:
        rows = await self._read(
            "SELECT m.role, g.version FROM group_members AS m JOIN groups AS g ON g.id = m.grp"
            " WHERE m.grp = ? AND m.user = ?",
            (group, user),
        )
        return GroupHead(*rows[0]) if rows else None

    async def group_records(self, group: bytes, after_version: int, limit: int) -> list[bytes]:
        rows = await self._read(
            "SELECT record FROM group_records WHERE grp = ? AND version > ?"
            " ORDER BY version LIMIT ?",
            (group, after_version, limit),
        )
        return [record for (record,) in rows]

    async def group_pending(
        self, group: bytes, user: bytes, after: int, limit: int
    ) -> list[GroupDeliver]:
        # One statement, so the membership check and the entries are one snapshot: an
        # entry after the user's removal is never returned.
        rows = await self._read(
            "SELECT gseq, msg, sender, at, body, change FROM group_log"
            " WHERE grp = ? AND gseq > ? AND (expires_at = 0 OR expires_at > ?)"
            " AND EXISTS (SELECT 1 FROM group_members WHERE grp = ? AND user = ?)"
            " ORDER BY gseq LIMIT ?",
            (group, after, self._clock(), group, user, limit),
        )
        return [
            GroupDeliver(group=group, gseq=q, msg=m, sender=f, at=a, body=b, change=bool(c))
            for q, m, f, a, b, c in rows
        ]

    async def blob_size(self, blob: bytes) -> int | None:
        # An expired story's image is gone for readers before the sweep deletes it.
        rows = await self._read(
            "SELECT size FROM blobs WHERE hash = ? AND (expires_at = 0 OR expires_at > ?)",
            (blob, self._clock()))
        return int(rows[0][0]) if rows else None

    async def blob_upload(self, user: bytes, blob: bytes) -> int | None:
        rows = await self._read(
            "SELECT size FROM blob_uploads WHERE user = ? AND hash = ?", (user, blob)
        )
        return int(rows[0][0]) if rows else None

    async def profile(self, user: bytes) -> bytes | None:
        rows = await self._read("SELECT record FROM profiles WHERE user = ?", (user,))
        return bytes(rows[0][0]) if rows else None

    _FOLLOW_PAGES: Final = {
        "followers": "target = ? AND state = 1",
        "following": "follower = ? AND state = 1",
        "requests": "target = ? AND state = 0",
    }

    async def follow_page(
        self, user: bytes, kind: str, offset: int, limit: int
    ) -> list[tuple[bytes, bytes | None]]:
        where = self._FOLLOW_PAGES[kind]
        rows = await self._read(
            f"SELECT record, approval FROM follows WHERE {where}"
            " ORDER BY at, follower, target LIMIT ? OFFSET ?",
            (user, limit, offset),
        )
        return [(bytes(r), bytes(a) if a is not None else None) for r, a in rows]

    async def feed_page(
        self, caller: bytes, authors: list[bytes] | None, before: bytes | None, limit: int
    ) -> list[bytes]:
        if authors is None:
            who = ("(author IN (SELECT target FROM follows WHERE follower = ? AND state = 1)"
                   " OR author = ?)")
            params: list[Any] = [caller, caller]
        else:
            if not authors:
                return []
            who = f"author IN ({','.join('?' * len(authors))})"
            params = list(authors)
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
        marks = ",".join("?" * len(posts))
        counts = {bytes(p): n for p, n in await self._read(
            f"SELECT post, count(*) FROM comments WHERE post IN ({marks}) GROUP BY post",
            tuple(posts))}
        reactions: dict[bytes, dict[str, int]] = {}
        for p, emoji, n in await self._read(
                f"SELECT post, emoji, count(*) FROM reactions WHERE post IN ({marks})"
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

    async def story_page(self, caller: bytes, authors: list[bytes] | None,
                         limit: int) -> list[bytes]:
        if authors is None:
            who = ("(author IN (SELECT target FROM follows WHERE follower = ? AND state = 1)"
                   " OR author = ?)")
            params: list[Any] = [caller, caller]
        else:
            if not authors:
                return []
            who = f"author IN ({','.join('?' * len(authors))})"
            params = list(authors)
        # Never an expired story, even before the sweep has deleted it.
        rows = await self._read(
            f"SELECT record FROM stories WHERE {who} AND expires_at > ?"
            " ORDER BY seq DESC LIMIT ?",
            (*params, self._clock(), limit),
        )
        return [bytes(r[0]) for r in rows]

    async def wallet_links(self, user: bytes) -> list[bytes]:
        rows = await self._read(
            "SELECT record FROM wallet_links WHERE user = ? ORDER BY issued_at, address",
            (user,))
        return [bytes(r[0]) for r in rows]

    async def wallet_owner(self, address: str) -> bytes | None:
        rows = await self._read("SELECT user FROM wallet_links WHERE address = ?", (address,))
        return bytes(rows[0][0]) if rows else None

    # --- writes: queueing -----------------------------------------------------------------

    def _submit(self, op_type: type[_Op], *args: Any) -> asyncio.Future[Any]:
        if self._closing or self._writer is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "the relay is shutting down")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(op_type(fut, *args))
        return fut

    def register(self, user: bytes, handle: str, sig: bytes) -> asyncio.Future[HandleRecord]:
        return self._submit(_Register, user, handle, sig)

    def publish_prekeys(
        self, user: bytes, spk: SignedPrekey | None, otks: Sequence[OneTimePrekey]
    ) -> asyncio.Future[int]:
        return self._submit(_Publish, user, spk, otks)

    def take_bundle(
        self, user: bytes, with_otk: bool = True
    ) -> asyncio.Future[BundleRecord | None]:
        return self._submit(_TakeBundle, user, with_otk)

    def enqueue(
        self, recipient: bytes, sender: bytes, msg_id: bytes, body: bytes, expires_at: int = 0,
        conv: bool = False,
    ) -> asyncio.Future[Stored]:
        return self._submit(_Send, recipient, sender, msg_id, body, expires_at, conv)

    def ack(self, user: bytes, seqs: Sequence[int]) -> asyncio.Future[None]:
        return self._submit(_Ack, user, seqs)

    def group_change(self, change: gr.GroupChange, record: bytes) -> asyncio.Future[Stored]:
        return self._submit(_GroupChange, change, record)

    def group_post(
        self, group: bytes, sender: bytes, msg_id: bytes, body: bytes, expires_at: int
    ) -> asyncio.Future[Stored]:
        return self._submit(_GroupPost, group, sender, msg_id, body, expires_at)

    def group_ack(self, user: bytes, group: bytes, upto: int) -> asyncio.Future[None]:
        return self._submit(_GroupAck, user, group, upto)

    def set_block(self, user: bytes, blocked: bytes, on: bool) -> asyncio.Future[None]:
        return self._submit(_Block, user, blocked, on)

    def set_privacy(self, user: bytes, hide_presence: bool) -> asyncio.Future[None]:
        return self._submit(_Privacy, user, hide_presence)

    def blob_begin(
        self, user: bytes, blob: bytes, size: int, quota: int
    ) -> asyncio.Future[BlobBegun]:
        return self._submit(_BlobBegin, user, blob, size, quota)

    def blob_commit(self, user: bytes, blob: bytes, size: int) -> asyncio.Future[None]:
        return self._submit(_BlobCommit, user, blob, size)

    def blob_abort(self, user: bytes, blob: bytes) -> asyncio.Future[None]:
        return self._submit(_BlobAbort, user, blob)

    def sweep(self, now: int, limit: int) -> asyncio.Future[int]:
        return self._submit(_Sweep, now, limit)

    def put_story(self, author: bytes, story: bytes, expires_at: int, blob: bytes | None,
                  record: bytes) -> asyncio.Future[None]:
        return self._submit(_StoryPut, author, story, expires_at, blob, record)

    def sweep_stories(self, now: int, limit: int) -> asyncio.Future[SweptStories]:
        return self._submit(_StorySweep, now, limit)

    def retention_sweep(
        self, queue_before: int, uploads_before: int, limit: int, audit_before: int = 0
    ) -> asyncio.Future[RetentionSwept]:
        """Delete up to ``limit`` queued messages and group log entries stored before
        ``queue_before`` (ms; 0: none), up to ``limit`` unfinished uploads started before
        ``uploads_before`` and up to ``limit`` audit rows written before ``audit_before``
        (0: none), oldest first, through the primary keys (no table scan)."""
        return self._submit(_Retention, queue_before, uploads_before, limit, audit_before)

    def audit_insert(self, row: tuple[Any, ...]) -> asyncio.Future[int]:
        async def write(db: aiosqlite.Connection) -> int:
            cur = await db.execute(
                "INSERT INTO audit (at, actor, action, target, detail, ip, count)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            return int(cur.lastrowid or 0)

        return self.custom_write(write)

    def audit_add(self, row_id: int, count: int) -> asyncio.Future[None]:
        async def write(db: aiosqlite.Connection) -> None:
            await db.execute("UPDATE audit SET count = count + ? WHERE id = ?", (count, row_id))

        return self.custom_write(write)

    async def contacts_of(self, users: Sequence[bytes], peer: bytes) -> set[bytes]:
        found: set[bytes] = set()
        for chunk in _chunks(list(users), 400):
            rows = await self._read(
                "SELECT c.user FROM contacts AS c WHERE c.peer = ? AND c.user IN ("
                + ",".join("?" * len(chunk)) + ") AND NOT EXISTS (SELECT 1 FROM blocks AS b"
                " WHERE b.user = c.user AND b.blocked = c.peer)",
                [peer, *chunk])
            found.update(bytes(u) for (u,) in rows)
        return found

    def probe(self) -> asyncio.Future[None]:
        """A real write through the writer (the header's user_version, rewritten unchanged):
        resolves once it is committed, so the store is writable."""
        return self._submit(_Probe)

    async def stats(self) -> dict[str, int]:
        """Counts for /metrics (read at scrape time, not on the hot path)."""
        rows = await self._read(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM group_log),"
            " (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs),"
            " (SELECT count(*) FROM blob_uploads)"
        )
        keys = ("messages", "group_entries", "blobs", "blob_bytes", "uploads")
        return dict(zip(keys, rows[0], strict=True))

    def custom_write(self, fn: Callable[[Any], Awaitable[T]]) -> asyncio.Future[T]:
        return self._submit(_Custom, fn)

    async def custom_read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self._read(sql, params)

    def set_profile(
        self, user: bytes, record: bytes, updated_at: int, private: bool
    ) -> asyncio.Future[bytes]:
        return self._submit(_ProfileSet, user, record, updated_at, private)

    def follow(self, follower: bytes, target: bytes, record: bytes) -> asyncio.Future[str]:
        return self._submit(_Follow, follower, target, record)

    def put_post(self, author: bytes, post: bytes, record: bytes,
                 public: bool) -> asyncio.Future[None]:
        return self._submit(_PostPut, author, post, record, public)

    def put_comment(self, post: bytes, post_author: bytes, comment: bytes,
                    record: bytes) -> asyncio.Future[None]:
        return self._submit(_CommentPut, post, post_author, comment, record)

    def put_reaction(self, post: bytes, post_author: bytes, author: bytes, emoji: str,
                     created_at: int, removed: bool, record: bytes) -> asyncio.Future[None]:
        return self._submit(_ReactPut, post, post_author, author, emoji, created_at,
                            removed, record)

    def approve(self, owner: bytes, follower: bytes, record: bytes) -> asyncio.Future[None]:
        return self._submit(_Approve, owner, follower, record)

    def put_wallet_link(self, address: str, user: bytes, issued_at: int,
                        record: bytes) -> asyncio.Future[None]:
        return self._submit(_WalletLink, address, user, issued_at, record)

    def wallet_unlink(self, user: bytes, address: str) -> asyncio.Future[bool]:
        return self._submit(_WalletUnlink, user, address)

    def unfollow(self, follower: bytes, target: bytes) -> asyncio.Future[bool]:
        return self._submit(_Unfollow, follower, target)

    def bulk_add_members(
        self, group: bytes, users: Sequence[bytes], role: str = gr.MEMBER
    ) -> asyncio.Future[int]:
        """For benchmarks and imports only: make ``users`` members of an existing group
        directly (executemany in chunks, one transaction), without a signed record — so
        clients checking the chain will not see them. Users already members are left
        alone; each new member's cursor is the log's current end. The number added.
        ProtocolError(not_found) if the group does not exist."""
        if role not in gr.ROLES:
            raise ValueError(f"unknown role {role!r}")
        return self._submit(_BulkMembers, group, users, role)

    # --- writes: the writer task ------------------------------------------------------------

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                break
            batch: list[_Op] = [first]  # type: ignore[list-item]
            while len(batch) < self.batch_max and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            await self._commit_batch(batch)

    async def _commit_batch(self, ops: list[_Op]) -> None:
        db = self._db
        assert db is not None
        out = _Batch()
        seq_before, gseq_before = self._next_seq, self._next_gseq
        started = time.perf_counter()
        try:
            runs = [(op_type, list(group)) for op_type, group in itertools.groupby(ops, key=type)]
            if all(op_type in self._APPLY_SYNC for op_type, _ in runs):
                # The hot path (sends, acks, group posts and acks): the whole transaction in
                # the SQLite thread, one hand-off instead of one per statement.
                await db._execute(self._transaction_sync, db._conn, runs, out)
            else:
                await db.execute("BEGIN IMMEDIATE")
                for op_type, group_ops in runs:
                    if (apply_sync := self._APPLY_SYNC.get(op_type)) is not None:
                        await db._execute(apply_sync, self, db._conn, group_ops, out)
                    else:
                        await self._APPLY[op_type](self, group_ops, out)
                await db._execute(self._maybe_prune_sync, db._conn)
                await db.execute("COMMIT")
        except Exception as exc:
            self._next_seq, self._next_gseq = seq_before, gseq_before
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            refused = storage_error(exc)
            if refused is None and len(ops) > 1:
                # A bug in one write must not fail the others that shared its batch:
                # apply them one by one, so only the faulty one is answered `internal`.
                log.exception("write batch of %d failed; rolled back, retrying one by one",
                              len(ops))
                self._batch_done(started, len(ops), False)
                for op in ops:
                    await self._commit_batch([op])
                return
            if refused is None:
                log.exception("write batch of %d failed; rolled back", len(ops))
            else:
                log.error("write batch of %d refused by the disk (%s); rolled back",
                          len(ops), exc)
                exc = refused
            self.last_write_error = str(exc)
            self._batch_done(started, len(ops), False)
            for op in ops:
                if not op.fut.done():
                    op.fut.set_exception(exc)
            return
        self.last_write_error = None
        self._batch_done(started, len(ops), True)
        for fut, value in out.results:
            if fut.done():  # the caller went away
                continue
            if isinstance(value, BaseException):
                fut.set_exception(value)
            else:
                fut.set_result(value)
        # Pushes go out two loop turns later: the futures' callbacks above run in the
        # next turn and queue the writers' answers (`stored`), which are written in the
        # turn after, ahead of the pushes — so a post's author isn't kept waiting behind
        # a fan-out to 1,000 online members. call_soon is FIFO: commit order is kept.
        loop = asyncio.get_running_loop()
        if out.stored and self.on_commit is not None:
            loop.call_soon(loop.call_soon, self._notify, self.on_commit, out.stored)
        if out.group_events and self.on_group_commit is not None:
            loop.call_soon(loop.call_soon, self._notify, self.on_group_commit,
                           out.group_events)

    def _batch_done(self, started: float, ops: int, ok: bool) -> None:
        if self.on_batch is not None:
            try:
                self.on_batch(time.perf_counter() - started, ops, ok)
            except Exception:
                log.exception("batch listener failed")

    @staticmethod
    def _notify(listener: Callable[[Any], None], items: Any) -> None:
        try:
            listener(items)
        except Exception:
            log.exception("commit listener failed")

    def _transaction_sync(
        self, conn: sqlite3.Connection, runs: list[tuple[type[_Op], list[_Op]]], out: _Batch
    ) -> None:
        """In the SQLite thread: one transaction of hot-path writes (see _APPLY_SYNC)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op_type, group_ops in runs:
                self._APPLY_SYNC[op_type](self, conn, group_ops, out)
            self._maybe_prune_sync(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _maybe_prune_sync(self, conn: sqlite3.Connection) -> None:
        now = self._clock()
        if now - self._last_prune >= _PRUNE_EVERY_MS:
            self._last_prune = now
            conn.execute("DELETE FROM sent WHERE at < ?", (now - DEDUPE_WINDOW_MS,))
            conn.execute("DELETE FROM group_sent WHERE at < ?", (now - DEDUPE_WINDOW_MS,))

    # The appliers below run in the SQLite thread (called through _transaction_sync or
    # aiosqlite's queue): plain sqlite3 calls, no awaits. They touch only the writer's own
    # state (_next_seq, _next_gseq, _queued), which nothing else changes meanwhile, and
    # leave futures to the event loop (out.results).

    def _apply_sends(self, db: sqlite3.Connection, ops: list[_Send], out: _Batch) -> None:
        at = self._clock()
        # One look-up per chunk for earlier copies of these messages (retries), no per-row awaits.
        keys = list({(op.sender, op.msg_id) for op in ops})
        known: dict[tuple[bytes, bytes], Stored] = {}
        for chunk in _chunks(keys, 400):
            # A join, not "(sender, msg_id) IN (VALUES ...)": SQLite scans the table for that.
            rows = db.execute(
                "SELECT s.sender, s.msg_id, s.seq, s.at FROM (VALUES "
                + ",".join(["(?,?)"] * len(chunk))
                + ") AS k JOIN sent AS s ON s.sender = k.column1 AND s.msg_id = k.column2",
                [v for key in chunk for v in key],
            ).fetchall()
            for sender, msg_id, seq, at0 in rows:
                known[(sender, msg_id)] = Stored(seq, at0)
        blocked = self._blocked_pairs(
            db, {(op.recipient, op.sender) for op in ops if op.recipient in self._blockers}
        )
        queue_max, bytes_max, queued = self.queue_max, self.queue_bytes_max, self._queued
        limited = bool(queue_max or bytes_max)
        shared = bool(self.share_max or self.share_bytes_max)
        queued_from = self._queued_from
        if limited:
            if len(queued) > 100_000:
                queued.clear()
            for recipient in {op.recipient for op in ops} - queued.keys():
                queued[recipient] = self._queue_size(db, recipient)
        if shared:
            if len(queued_from) > 100_000:
                queued_from.clear()
            for pair in {(op.recipient, op.sender) for op in ops} - queued_from.keys():
                queued_from[pair] = self._queue_size(db, *pair)
        contacts = self._contacts
        if len(contacts) > 200_000:
            contacts.clear()
        new_contacts: list[tuple[bytes, bytes]] = []
        messages: list[tuple[int, bytes, bytes, bytes, int, bytes, int]] = []
        sent: list[tuple[bytes, bytes, int, int]] = []
        added: dict[bytes, list[int]] = {}  # queued by this batch, not inserted yet
        for op in ops:
            key = (op.sender, op.msg_id)
            stored = known.get(key)
            if stored is None and limited and self._over(queued[op.recipient], len(op.body)):
                # Counted again: the cached size may be too high.
                size = self._queue_size(db, op.recipient)
                extra = added.get(op.recipient, [0, 0])
                size = queued[op.recipient] = [size[0] + extra[0], size[1] + extra[1]]
                if self._over(size, len(op.body)):
                    out.results.append((op.fut, ProtocolError(
                        ErrorCode.QUEUE_FULL,
                        f"the recipient has {size[0]} messages ({size[1]} bytes) waiting,"
                        " the most this relay queues; retry later")))
                    continue
            pair = (op.recipient, op.sender)
            if (stored is None and shared
                    and self._over_share(queued_from[pair], len(op.body))):
                size = queued_from[pair] = self._queue_size(db, *pair)  # counted again
                for row in messages:  # and what this batch queued, not inserted yet
                    if row[1] == op.recipient and row[2] == op.sender:
                        size[0] += 1
                        size[1] += len(row[5])
                if self._over_share(size, len(op.body)):
                    out.results.append((op.fut, ProtocolError(
                        ErrorCode.QUEUE_SHARE,
                        f"{size[0]} of your messages ({size[1]} bytes) wait for this"
                        f" recipient, the most one sender may queue ({self.queue_share}%"
                        " of the queue); retry once they have read some")))
                    continue
            if stored is None:
                # The writer is the only one inserting, so it can number messages itself.
                self._next_seq += 1
                stored = known[key] = Stored(self._next_seq, at)
                sent.append((op.sender, op.msg_id, stored.seq, at))
                # A blocked sender gets the same answer, but nothing is queued or pushed.
                if (op.recipient, op.sender) not in blocked:
                    if limited:
                        size = queued[op.recipient]
                        size[0] += 1
                        size[1] += len(op.body)
                        extra = added.setdefault(op.recipient, [0, 0])
                        extra[0] += 1
                        extra[1] += len(op.body)
                    if shared:
                        size = queued_from[pair]
                        size[0] += 1
                        size[1] += len(op.body)
                    contact = (op.sender, op.recipient)
                    # Only a message the user wrote makes a contact (security review M3):
                    # receipts and sender-key distributions go out automatically.
                    if op.conv and contact not in contacts:
                        contacts.add(contact)
                        new_contacts.append(contact)
                    messages.append(
                        (stored.seq, op.recipient, op.sender, op.msg_id, at, op.body,
                         op.expires_at)
                    )
                    out.stored.append(
                        (op.recipient, Deliver(stored.seq, op.msg_id, op.sender, at, op.body),
                         op.expires_at, op.conv)
                    )
            out.results.append((op.fut, stored))
        if messages:
            db.executemany(
                "INSERT INTO messages (seq, recipient, sender, msg_id, at, body, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                messages,
            )
        if new_contacts:
            db.executemany(
                "INSERT OR IGNORE INTO contacts (user, peer) VALUES (?, ?)", new_contacts)
        if sent:
            db.executemany(
                "INSERT INTO sent (sender, msg_id, seq, at) VALUES (?, ?, ?, ?)", sent
            )
            if len(messages) < len(sent):
                # Seqs given to blocked senders are never inserted: record them as used, so
                # a restart does not hand them out again.
                cur = db.execute(
                    "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'messages'",
                    (self._next_seq,),
                )
                if cur.rowcount == 0:
                    db.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', ?)",
                        (self._next_seq,),
                    )

    def _over(self, size: list[int], body: int) -> bool:
        """Would one more message of ``body`` bytes pass queue_max or queue_bytes_max?"""
        return bool((self.queue_max and size[0] >= self.queue_max)
                    or (self.queue_bytes_max and size[1] + body > self.queue_bytes_max))

    def _over_share(self, size: list[int], body: int) -> bool:
        """Would one more message of ``body`` bytes pass one sender's queue_share?"""
        return bool((self.share_max and size[0] >= self.share_max)
                    or (self.share_bytes_max and size[1] + body > self.share_bytes_max))

    @staticmethod
    def _queue_size(
        db: sqlite3.Connection, recipient: bytes, sender: bytes | None = None
    ) -> list[int]:
        # length() of a blob reads only its header, not the body
        if sender is None:
            count, size = db.execute(
                "SELECT count(*), coalesce(sum(length(body)), 0) FROM messages"
                " WHERE recipient = ?", (recipient,)).fetchone()
        else:
            count, size = db.execute(
                "SELECT count(*), coalesce(sum(length(body)), 0) FROM messages"
                " WHERE recipient = ? AND sender = ?", (recipient, sender)).fetchone()
        return [int(count), int(size)]

    @staticmethod
    def _blocked_pairs(
        db: sqlite3.Connection, pairs: set[tuple[bytes, bytes]]
    ) -> set[tuple[bytes, bytes]]:
        """Of these (recipient, sender) pairs, those where the recipient blocks the sender."""
        found: set[tuple[bytes, bytes]] = set()
        for chunk in _chunks(list(pairs), 400):
            rows = db.execute(
                "SELECT b.user, b.blocked FROM (VALUES "
                + ",".join(["(?,?)"] * len(chunk))
                + ") AS k JOIN blocks AS b ON b.user = k.column1 AND b.blocked = k.column2",
                [v for pair in chunk for v in pair],
            ).fetchall()
            found.update((user, sender) for user, sender in rows)
        return found

    def _apply_acks(self, db: sqlite3.Connection, ops: list[_Ack], out: _Batch) -> None:
        seqs = sorted({s for op in ops for s in op.seqs})
        owner: dict[int, bytes] = {}
        sizes: dict[int, int] = {}
        senders: dict[int, bytes] = {}
        for chunk in _chunks(seqs, 900):
            rows = db.execute(
                "SELECT seq, recipient, length(body), sender FROM messages"
                f" WHERE seq IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for seq, recipient, size, sender in rows:
                owner[seq] = recipient
                sizes[seq] = size
                senders[seq] = sender
        doomed: list[tuple[int]] = []
        for op in ops:
            if any(owner.get(s, op.user) != op.user for s in op.seqs):
                out.results.append(
                    (op.fut, ProtocolError(ErrorCode.FORBIDDEN, "a seq is in another queue"))
                )
                continue
            doomed.extend((s,) for s in op.seqs if s in owner)
            out.results.append((op.fut, None))
        if doomed:
            db.executemany("DELETE FROM messages WHERE seq = ?", doomed)
            for (seq,) in doomed:
                if (queue := self._queued.get(owner[seq])) is not None:
                    queue[0] -= 1
                    queue[1] -= sizes[seq]
                if (queue := self._queued_from.get((owner[seq], senders[seq]))) is not None:
                    queue[0] -= 1
                    queue[1] -= sizes[seq]

    async def _apply_registers(self, ops: list[_Register], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            rows = list(
                await db.execute_fetchall(
                    "SELECT handle, user, sig FROM handles WHERE handle = ? OR user = ?",
                    (op.handle, op.user),
                )
            )
            by_name = next((HandleRecord(*r) for r in rows if r[0] == op.handle), None)
            by_user = next((HandleRecord(*r) for r in rows if r[1] == op.user), None)
            result: Any
            if by_name is not None and by_name.user != op.user:
                result = ProtocolError(ErrorCode.HANDLE_TAKEN, f"@{op.handle} is taken")
            elif by_name is not None:
                result = by_name  # the owner registering again: nothing changes
            elif by_user is not None:
                result = ProtocolError(
                    ErrorCode.FORBIDDEN, f"this identity already holds @{by_user.handle}"
                )
            else:
                await db.execute(
                    "INSERT INTO handles (handle, user, sig, at) VALUES (?, ?, ?, ?)",
                    (op.handle, op.user, op.sig, self._clock()),
                )
                result = HandleRecord(op.handle, op.user, op.sig)
                self._known.add(op.user)
            out.results.append((op.fut, result))

    async def _apply_publishes(self, ops: list[_Publish], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            if op.spk is not None:
                await db.execute(
                    "INSERT OR REPLACE INTO signed_prekeys (user, key_id, pub, sig, at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (op.user, op.spk.key_id, op.spk.pub, op.spk.sig, self._clock()),
                )
                self._known.add(op.user)
            count = await self._count_otks(db, op.user)
            if op.otks and count < self.otk_max:
                fresh: dict[int, bytes] = {}
                for otk in op.otks:
                    fresh.setdefault(otk.key_id, otk.pub)  # first copy of a key_id wins
                for chunk in _chunks(list(fresh), 900):
                    rows = await db.execute_fetchall(
                        "SELECT key_id FROM one_time_prekeys WHERE user = ? AND key_id IN ("
                        + ",".join("?" * len(chunk))
                        + ")",
                        [op.user, *chunk],
                    )
                    for (key_id,) in rows:
                        del fresh[key_id]
                rows_to_add = [(op.user, k, p) for k, p in fresh.items()][: self.otk_max - count]
                await db.executemany(
                    "INSERT INTO one_time_prekeys (user, key_id, pub) VALUES (?, ?, ?)",
                    rows_to_add,
                )
                count += len(rows_to_add)
            out.results.append((op.fut, count))

    async def _apply_take_bundles(self, ops: list[_TakeBundle], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            rows = list(
                await db.execute_fetchall(
                    "SELECT key_id, pub, sig FROM signed_prekeys WHERE user = ?", (op.user,)
                )
            )
            if not rows:
                out.results.append((op.fut, None))
                continue
            spk = SignedPrekey(*rows[0])
            if not op.with_otk:  # past the target's otk_rate: the bundle comes without one
                count = await self._count_otks(db, op.user)
                out.results.append((op.fut, BundleRecord(spk, None, count)))
                continue
            rows = list(
                await db.execute_fetchall(
                    "SELECT key_id, pub FROM one_time_prekeys WHERE user = ?"
                    " ORDER BY key_id LIMIT 1",
                    (op.user,),
                )
            )
            otk = OneTimePrekey(*rows[0]) if rows else None
            if otk is not None:
                await db.execute(
                    "DELETE FROM one_time_prekeys WHERE user = ? AND key_id = ?",
                    (op.user, otk.key_id),
                )
            count = await self._count_otks(db, op.user)
            out.results.append((op.fut, BundleRecord(spk, otk, count)))

    @staticmethod
    async def _count_otks(db: aiosqlite.Connection, user: bytes) -> int:
        rows = await db.execute_fetchall(
            "SELECT count(*) FROM one_time_prekeys WHERE user = ?", (user,)
        )
        return int(next(iter(rows))[0])

    # --- groups ---------------------------------------------------------------------------

    async def _roles(
        self, db: aiosqlite.Connection, group: bytes, users: Sequence[bytes]
    ) -> dict[bytes, str]:
        """The roles of those of ``users`` that are members of ``group`` (by primary key)."""
        roles: dict[bytes, str] = {}
        for chunk in _chunks(list(users), 900):
            rows = await db.execute_fetchall(
                "SELECT user, role FROM group_members WHERE grp = ? AND user IN ("
                + ",".join("?" * len(chunk))
                + ")",
                [group, *chunk],
            )
            roles.update((user, role) for user, role in rows)
        return roles

    def _log_entry(
        self, group: bytes, sender: bytes, msg: bytes, body: bytes, change: bool,
        expires_at: int,
    ) -> tuple[GroupDeliver, tuple[Any, ...]]:
        self._next_gseq += 1
        item = GroupDeliver(group=group, gseq=self._next_gseq, msg=msg, sender=sender,
                            at=self._clock(), body=body, change=change)
        row = (item.gseq, group, sender, msg, item.at, body, int(change), expires_at)
        return item, row

    _INSERT_LOG: Final = (
        "INSERT INTO group_log (gseq, grp, sender, msg, at, body, change, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )

    async def _apply_group_changes(self, ops: list[_GroupChange], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            try:
                result: Any = await self._group_change(db, op, out)
            except ProtocolError as exc:  # raised before any write of this op
                result = exc
            out.results.append((op.fut, result))

    async def _group_change(
        self, db: aiosqlite.Connection, op: _GroupChange, out: _Batch
    ) -> Stored:
        change = op.change
        group = change.group
        rows = list(
            await db.execute_fetchall("SELECT version, head FROM groups WHERE id = ?", (group,))
        )
        version, head = rows[0] if rows else (0, gr.GENESIS)
        # Only the actor's and the targets' roles: never the whole membership.
        roles = await self._roles(db, group, list({change.actor, *change.members}))
        if change.op != "create" and change.actor not in roles:
            # Non-members learn nothing, not even whether the group exists.
            raise ProtocolError(ErrorCode.FORBIDDEN, "not a member of this group")
        effects = gr.check_change(change, version=version, head=head, roles=roles)
        item, row = self._log_entry(
            group, change.actor, gr.record_hash(op.record)[:16], op.record, True, 0
        )
        new_head = gr.record_hash(op.record)
        if change.op == "create":
            meta = effects.meta
            await db.execute(
                "INSERT INTO groups (id, version, head, name, topic, avatar, announce, last_gseq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (group, change.version, new_head, meta["name"], meta["topic"], meta["avatar"],
                 int(bool(meta["announce"])), item.gseq),
            )
        else:
            sets = ["version = ?", "head = ?", "last_gseq = ?"]
            values: list[Any] = [change.version, new_head, item.gseq]
            for key in ("name", "topic", "avatar", "announce"):
                if key in effects.meta:
                    sets.append(f"{key} = ?")
                    value = effects.meta[key]
                    values.append(int(bool(value)) if key == "announce" else value)
            await db.execute(f"UPDATE groups SET {', '.join(sets)} WHERE id = ?", (*values, group))
        cursor = item.gseq - 1  # a new member's first entry is the one that added them
        added = [(group, u, r, cursor) for u, r in effects.roles.items()
                 if r is not None and u not in roles]
        changed = [(r, group, u) for u, r in effects.roles.items()
                   if r is not None and u in roles]
        removed = [(group, u) for u, r in effects.roles.items() if r is None]
        if added:
            await db.executemany(
                "INSERT INTO group_members (grp, user, role, cursor) VALUES (?, ?, ?, ?)", added
            )
        if changed:
            await db.executemany(
                "UPDATE group_members SET role = ? WHERE grp = ? AND user = ?", changed
            )
        if removed:
            await db.executemany("DELETE FROM group_members WHERE grp = ? AND user = ?", removed)
        await db.execute(
            "INSERT INTO group_records (grp, version, record) VALUES (?, ?, ?)",
            (group, change.version, op.record),
        )
        await db.execute(self._INSERT_LOG, row)
        membership = {u: r for u, r in effects.roles.items() if r is None or u not in roles}
        if membership:
            # Before the entry: an added member gets it, a removed one does not.
            out.group_events.append(MembersChanged(group, membership, cursor))
        out.group_events.append(GroupEntry(item, 0))
        return Stored(item.gseq, item.at)

    def _apply_group_posts(
        self, db: sqlite3.Connection, ops: list[_GroupPost], out: _Batch
    ) -> None:
        for op in ops:
            rows = db.execute(
                "SELECT gseq, at FROM group_sent WHERE grp = ? AND sender = ? AND msg = ?",
                (op.group, op.sender, op.msg_id),
            ).fetchall()
            if rows:  # a retry: the original answer
                out.results.append((op.fut, Stored(*rows[0])))
                continue
            rows = db.execute(
                "SELECT m.role, g.announce FROM group_members AS m"
                " JOIN groups AS g ON g.id = m.grp WHERE m.grp = ? AND m.user = ?",
                (op.group, op.sender),
            ).fetchall()
            if not rows:
                out.results.append(
                    (op.fut, ProtocolError(ErrorCode.FORBIDDEN, "not a member of this group"))
                )
                continue
            role, announce = rows[0]
            if not gr.can_post(role, bool(announce)):
                out.results.append(
                    (op.fut, ProtocolError(ErrorCode.FORBIDDEN, "only admins may post here"))
                )
                continue
            item, row = self._log_entry(
                op.group, op.sender, op.msg_id, op.body, False, op.expires_at
            )
            db.execute(self._INSERT_LOG, row)
            db.execute(
                "INSERT INTO group_sent (grp, sender, msg, gseq, at) VALUES (?, ?, ?, ?, ?)",
                (op.group, op.sender, op.msg_id, item.gseq, item.at),
            )
            db.execute(
                "UPDATE groups SET last_gseq = ? WHERE id = ?", (item.gseq, op.group)
            )
            out.group_events.append(GroupEntry(item, op.expires_at))
            out.results.append((op.fut, Stored(item.gseq, item.at)))

    def _apply_group_acks(
        self, db: sqlite3.Connection, ops: list[_GroupAck], out: _Batch
    ) -> None:
        for op in ops:
            cur = db.execute(
                "UPDATE group_members SET cursor = max(cursor,"
                " min(?, (SELECT last_gseq FROM groups WHERE id = ?)))"
                " WHERE grp = ? AND user = ?",
                (op.upto, op.group, op.group, op.user),
            )
            if cur.rowcount == 0:
                result: Any = ProtocolError(ErrorCode.FORBIDDEN, "not a member of this group")
            else:
                result = None
            out.results.append((op.fut, result))

    async def _apply_bulk_members(self, ops: list[_BulkMembers], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            rows = list(
                await db.execute_fetchall(
                    "SELECT last_gseq FROM groups WHERE id = ?", (op.group,)
                )
            )
            if not rows:
                out.results.append((op.fut, ProtocolError(ErrorCode.NOT_FOUND, "no such group")))
                continue
            cursor = rows[0][0]
            before = db.total_changes
            for chunk in _chunks(list(op.users), 10_000):
                await db.executemany(
                    "INSERT OR IGNORE INTO group_members (grp, user, role, cursor)"
                    " VALUES (?, ?, ?, ?)",
                    [(op.group, user, op.role, cursor) for user in chunk],
                )
            added = db.total_changes - before
            out.group_events.append(
                MembersChanged(op.group, dict.fromkeys(op.users, op.role), cursor)
            )
            out.results.append((op.fut, added))

    # --- blocks, privacy, expiry ------------------------------------------------------------

    async def _apply_blocks(self, ops: list[_Block], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            if op.on:
                await db.execute(
                    "INSERT OR IGNORE INTO blocks (user, blocked) VALUES (?, ?)",
                    (op.user, op.blocked),
                )
                self._blockers.add(op.user)  # an over-estimate if rolled back: harmless
            else:
                await db.execute(
                    "DELETE FROM blocks WHERE user = ? AND blocked = ?", (op.user, op.blocked)
                )
            out.results.append((op.fut, None))

    async def _apply_privacy(self, ops: list[_Privacy], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            await db.execute(
                "INSERT OR REPLACE INTO privacy (user, hide_presence) VALUES (?, ?)",
                (op.user, int(op.hide_presence)),
            )
            out.results.append((op.fut, None))

    async def _apply_customs(self, ops: list[_Custom], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            try:
                result: Any = await op.fn(db)
            except ProtocolError as exc:
                result = exc
            out.results.append((op.fut, result))
        self._queued.clear()  # an admin action may have removed queued messages
        self._queued_from.clear()

    async def _apply_sweeps(self, ops: list[_Sweep], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            # Both through the partial indexes on expires_at: no table scan.
            cur = await db.execute(
                "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
                " WHERE expires_at > 0 AND expires_at <= ? LIMIT ?)",
                (op.now, op.limit),
            )
            n_messages = cur.rowcount
            if n_messages:
                self._queued.clear()
                self._queued_from.clear()
            cur = await db.execute(
                "DELETE FROM group_log WHERE gseq IN (SELECT gseq FROM group_log"
                " WHERE expires_at > 0 AND expires_at <= ? LIMIT ?)",
                (op.now, op.limit),
            )
            out.results.append((op.fut, max(n_messages, cur.rowcount)))

    async def _apply_retention(self, ops: list[_Retention], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            n_messages = n_entries = 0
            if op.queue_before:
                # seq and gseq grow with `at`: the oldest rows are the first keys. Look at
                # no more than `limit` of them (a primary-key range), delete the old ones.
                cur = await db.execute(
                    "DELETE FROM messages WHERE seq IN (SELECT seq FROM (SELECT seq, at FROM"
                    " messages ORDER BY seq LIMIT ?) WHERE at < ?)",
                    (op.limit, op.queue_before),
                )
                n_messages = cur.rowcount
                cur = await db.execute(
                    "DELETE FROM group_log WHERE gseq IN (SELECT gseq FROM (SELECT gseq, at"
                    " FROM group_log ORDER BY gseq LIMIT ?) WHERE at < ?)",
                    (op.limit, op.queue_before),
                )
                n_entries = cur.rowcount
            # Uploads in progress are few (one row per unfinished upload), so this reads a
            # small table.
            rows = await db.execute_fetchall(
                "SELECT user, hash FROM blob_uploads WHERE started_at < ? LIMIT ?",
                (op.uploads_before, op.limit),
            )
            uploads = [(bytes(u), bytes(h)) for u, h in rows]
            await db.executemany(
                "DELETE FROM blob_uploads WHERE user = ? AND hash = ?", uploads
            )
            n_audit = 0
            if op.audit_before:  # ids grow with `at`, as for messages above
                cur = await db.execute(
                    "DELETE FROM audit WHERE id IN (SELECT id FROM (SELECT id, at FROM audit"
                    " ORDER BY id LIMIT ?) WHERE at < ?)", (op.limit, op.audit_before))
                n_audit = cur.rowcount
            out.results.append(
                (op.fut, RetentionSwept(n_messages, n_entries, uploads, n_audit)))

    async def _apply_probes(self, ops: list[_Probe], out: _Batch) -> None:
        db = self._db
        assert db is not None
        rows = await db.execute_fetchall("PRAGMA user_version")
        await db.execute(f"PRAGMA user_version={int(next(iter(rows))[0])}")
        for op in ops:
            out.results.append((op.fut, None))

    # --- social -----------------------------------------------------------------------------

    async def _apply_profile_sets(self, ops: list[_ProfileSet], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            # Only a strictly newer record replaces the stored one (a replay of an old
            # record can't roll a profile back).
            await db.execute(
                "INSERT INTO profiles (user, record, updated_at, private) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (user) DO UPDATE SET record = excluded.record,"
                " updated_at = excluded.updated_at, private = excluded.private"
                " WHERE excluded.updated_at > profiles.updated_at",
                (op.user, op.record, op.updated_at, int(op.private)),
            )
            rows = await db.execute_fetchall(
                "SELECT record FROM profiles WHERE user = ?", (op.user,)
            )
            out.results.append((op.fut, bytes(next(iter(rows))[0])))

    async def _apply_follows(self, ops: list[_Follow], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            rows = list(await db.execute_fetchall(
                "SELECT state FROM follows WHERE follower = ? AND target = ?",
                (op.follower, op.target),
            ))
            if rows:  # already following, or already asked: unchanged
                out.results.append((op.fut, "following" if rows[0][0] else "requested"))
                continue
            rows = list(await db.execute_fetchall(
                "SELECT private FROM profiles WHERE user = ?", (op.target,)
            ))
            state = 0 if rows and rows[0][0] else 1
            await db.execute(
                "INSERT INTO follows (follower, target, record, state, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (op.follower, op.target, op.record, state, self._clock()),
            )
            out.results.append((op.fut, "following" if state else "requested"))

    async def _apply_approves(self, ops: list[_Approve], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            cur = await db.execute(
                "UPDATE follows SET state = 1, approval = ?"
                " WHERE follower = ? AND target = ? AND state = 0",
                (op.record, op.follower, op.owner),
            )
            result: Any = None
            if cur.rowcount == 0:
                result = ProtocolError(ErrorCode.NOT_FOUND, "no pending request from this user")
            out.results.append((op.fut, result))

    async def _apply_unfollows(self, ops: list[_Unfollow], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            cur = await db.execute(
                "DELETE FROM follows WHERE follower = ? AND target = ?",
                (op.follower, op.target),
            )
            out.results.append((op.fut, cur.rowcount > 0))

    async def _apply_post_puts(self, ops: list[_PostPut], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            result: Any = None
            if op.public:
                rows = list(await db.execute_fetchall(
                    "SELECT private FROM profiles WHERE user = ?", (op.author,)))
                if rows and rows[0][0]:
                    result = ProtocolError(ErrorCode.FORBIDDEN,
                                           "a private account's posts are followers-only")
            if result is None:
                cur = await db.execute(
                    "INSERT OR IGNORE INTO posts (id, author, record) VALUES (?, ?, ?)",
                    (op.post, op.author, op.record))
                if cur.rowcount == 0:
                    rows = list(await db.execute_fetchall(
                        "SELECT record FROM posts WHERE id = ?", (op.post,)))
                    if bytes(rows[0][0]) != op.record:
                        result = ProtocolError(ErrorCode.FORBIDDEN,
                                               "another post has this id")
            out.results.append((op.fut, result))

    async def _post_missing(self, post: bytes, post_author: bytes) -> ProtocolError | None:
        db = self._db
        assert db is not None
        rows = list(await db.execute_fetchall("SELECT author FROM posts WHERE id = ?", (post,)))
        if not rows or bytes(rows[0][0]) != post_author:
            return ProtocolError(ErrorCode.NOT_FOUND, "no such post by that author")
        return None

    async def _apply_comment_puts(self, ops: list[_CommentPut], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            result: Any = await self._post_missing(op.post, op.post_author)
            if result is None:
                cur = await db.execute(
                    "INSERT OR IGNORE INTO comments (id, post, record) VALUES (?, ?, ?)",
                    (op.comment, op.post, op.record))
                if cur.rowcount == 0:
                    rows = list(await db.execute_fetchall(
                        "SELECT record FROM comments WHERE id = ?", (op.comment,)))
                    if bytes(rows[0][0]) != op.record:
                        result = ProtocolError(ErrorCode.FORBIDDEN,
                                               "another comment has this id")
            out.results.append((op.fut, result))

    @staticmethod
    async def _reaction_count(db: aiosqlite.Connection, post: bytes, author: bytes) -> int:
        rows = await db.execute_fetchall(
            "SELECT count(*) FROM reactions WHERE post = ? AND author = ?", (post, author))
        return int(next(iter(rows))[0])

    async def _apply_react_puts(self, ops: list[_ReactPut], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            result: Any = await self._post_missing(op.post, op.post_author)
            if result is None:
                key = (op.post, op.author, op.emoji)
                rows = list(await db.execute_fetchall(
                    "SELECT created_at FROM reactions WHERE post = ? AND author = ?"
                    " AND emoji = ?", key))
                if rows and rows[0][0] > op.created_at:
                    pass  # a newer reaction (or removal) than this one is stored
                elif op.removed:
                    await db.execute("DELETE FROM reactions WHERE post = ? AND author = ?"
                                     " AND emoji = ?", key)
                elif not rows and self.reactions_max and await self._reaction_count(
                        db, op.post, op.author) >= self.reactions_max:
                    result = ProtocolError(
                        ErrorCode.TOO_MANY_REACTIONS,
                        f"you have {self.reactions_max} reactions on this post, the most"
                        " this relay keeps; remove one first")
                else:
                    await db.execute(
                        "INSERT OR REPLACE INTO reactions (post, author, emoji, created_at,"
                        " record) VALUES (?, ?, ?, ?, ?)", (*key, op.created_at, op.record))
            out.results.append((op.fut, result))

    # --- stories --------------------------------------------------------------------------

    async def _apply_story_puts(self, ops: list[_StoryPut], out: _Batch) -> None:
        db = self._db
        assert db is not None
        now = self._clock()
        for op in ops:
            result: Any = None
            if op.expires_at <= now:
                result = ProtocolError(ErrorCode.EXPIRED, "this story has already expired")
            elif op.expires_at > now + STORY_TTL_MS + STORY_CLOCK_SLACK_MS:
                result = ProtocolError(ErrorCode.EXPIRED, "a story lives at most 24 hours")
            elif op.blob is not None:
                rows = list(await db.execute_fetchall(
                    "SELECT owner, expires_at FROM blobs WHERE hash = ?", (op.blob,)))
                if not rows or bytes(rows[0][0]) != op.author or 0 < rows[0][1] <= now:
                    result = ProtocolError(ErrorCode.NOT_FOUND,
                                           "the story's image is not a blob you stored")
            if result is None:
                cur = await db.execute(
                    "INSERT OR IGNORE INTO stories (id, author, expires_at, blob, record)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (op.story, op.author, op.expires_at, op.blob, op.record))
                if cur.rowcount == 0:
                    rows = list(await db.execute_fetchall(
                        "SELECT record FROM stories WHERE id = ?", (op.story,)))
                    if bytes(rows[0][0]) != op.record:
                        result = ProtocolError(ErrorCode.FORBIDDEN, "another story has this id")
                elif op.blob is not None:
                    # The image goes with the story (and with the last story using it).
                    await db.execute(
                        "UPDATE blobs SET expires_at = max(expires_at, ?) WHERE hash = ?",
                        (op.expires_at, op.blob))
            out.results.append((op.fut, result))

    async def _apply_story_sweeps(self, ops: list[_StorySweep], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            # Both through the expires_at indexes: no table scan, at most `limit` rows each.
            cur = await db.execute(
                "DELETE FROM stories WHERE seq IN (SELECT seq FROM stories"
                " WHERE expires_at <= ? LIMIT ?)", (op.now, op.limit))
            n_stories = cur.rowcount
            rows = await db.execute_fetchall(
                "DELETE FROM blobs WHERE hash IN (SELECT hash FROM blobs"
                " WHERE expires_at > 0 AND expires_at <= ? LIMIT ?) RETURNING hash",
                (op.now, op.limit))
            out.results.append((op.fut, SweptStories(n_stories, [bytes(r[0]) for r in rows])))

    # --- blobs ----------------------------------------------------------------------------

    async def _apply_blob_begins(self, ops: list[_BlobBegin], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            rows = await db.execute_fetchall("SELECT size FROM blobs WHERE hash = ?", (op.blob,))
            if rows:
                out.results.append((op.fut, BlobBegun(stored=True, new=False,
                                                      size=next(iter(rows))[0])))
                continue
            rows = await db.execute_fetchall(
                "SELECT size FROM blob_uploads WHERE user = ? AND hash = ?", (op.user, op.blob)
            )
            if rows:
                size = next(iter(rows))[0]
                if size != op.size:
                    out.results.append((op.fut, ProtocolError(
                        ErrorCode.PROTOCOL,
                        f"an upload of this blob with size {size} is in progress",
                    )))
                else:
                    out.results.append((op.fut, BlobBegun(stored=False, new=False, size=size)))
                continue
            rows = await db.execute_fetchall(
                "SELECT coalesce((SELECT sum(size) FROM blobs WHERE owner = ?), 0)"
                " + coalesce((SELECT sum(size) FROM blob_uploads WHERE user = ?), 0)",
                (op.user, op.user),
            )
            used = next(iter(rows))[0]
            if used + op.size > op.quota:
                out.results.append((op.fut, ProtocolError(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"{op.size} more bytes would pass the blob quota of {op.quota}"
                    f" ({used} used)",
                )))
                continue
            await db.execute(
                "INSERT INTO blob_uploads (user, hash, size, started_at) VALUES (?, ?, ?, ?)",
                (op.user, op.blob, op.size, self._clock()),
            )
            out.results.append((op.fut, BlobBegun(stored=False, new=True, size=op.size)))

    async def _apply_blob_commits(self, ops: list[_BlobCommit], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            await db.execute(
                "INSERT OR IGNORE INTO blobs (hash, owner, size, created_at) VALUES (?, ?, ?, ?)",
                (op.blob, op.user, op.size, self._clock()),
            )
            await db.execute(
                "DELETE FROM blob_uploads WHERE user = ? AND hash = ?", (op.user, op.blob)
            )
            out.results.append((op.fut, None))

    async def _apply_blob_aborts(self, ops: list[_BlobAbort], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            await db.execute(
                "DELETE FROM blob_uploads WHERE user = ? AND hash = ?", (op.user, op.blob)
            )
            out.results.append((op.fut, None))

    async def _apply_wallet_links(self, ops: list[_WalletLink], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            # A replayed older binding can't take an address back from a newer one.
            cur = await db.execute(
                "INSERT INTO wallet_links (address, user, issued_at, record) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (address) DO UPDATE SET user = excluded.user,"
                " issued_at = excluded.issued_at, record = excluded.record"
                " WHERE excluded.issued_at >= wallet_links.issued_at",
                (op.address, op.user, op.issued_at, op.record),
            )
            if cur.rowcount == 0:
                out.results.append((op.fut, ProtocolError(
                    ErrorCode.FORBIDDEN, "a newer binding of this wallet is stored")))
            else:
                out.results.append((op.fut, None))

    async def _apply_wallet_unlinks(self, ops: list[_WalletUnlink], out: _Batch) -> None:
        db = self._db
        assert db is not None
        for op in ops:
            cur = await db.execute(
                "DELETE FROM wallet_links WHERE address = ? AND user = ?", (op.address, op.user))
            out.results.append((op.fut, cur.rowcount > 0))

    # Writes applied in the SQLite thread (synchronous); the hot path.
    _APPLY_SYNC: Final[dict[type[_Op], Callable[..., None]]] = {
        _Send: _apply_sends,
        _Ack: _apply_acks,
        _GroupPost: _apply_group_posts,
        _GroupAck: _apply_group_acks,
    }
    # The other writes: coroutines awaiting aiosqlite per statement.
    _APPLY: Final[dict[type[_Op], Callable[..., Any]]] = {
        _Register: _apply_registers,
        _Publish: _apply_publishes,
        _TakeBundle: _apply_take_bundles,
        _GroupChange: _apply_group_changes,
        _BulkMembers: _apply_bulk_members,
        _Block: _apply_blocks,
        _Privacy: _apply_privacy,
        _Sweep: _apply_sweeps,
        _Retention: _apply_retention,
        _Probe: _apply_probes,
        _BlobBegin: _apply_blob_begins,
        _BlobCommit: _apply_blob_commits,
        _BlobAbort: _apply_blob_aborts,
        _ProfileSet: _apply_profile_sets,
        _Follow: _apply_follows,
        _Approve: _apply_approves,
        _Unfollow: _apply_unfollows,
        _PostPut: _apply_post_puts,
        _CommentPut: _apply_comment_puts,
        _ReactPut: _apply_react_puts,
        _Custom: _apply_customs,
        _StoryPut: _apply_story_puts,
        _StorySweep: _apply_story_sweeps,
        _WalletLink: _apply_wallet_links,
        _WalletUnlink: _apply_wallet_unlinks,
    }
