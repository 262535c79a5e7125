"""The storage interface of the relay: everything the relay keeps, and nothing about how.

A backend (today relay/storage/sqlite) implements :class:`Store`. Reads are coroutines.
Writes are plain methods returning a future: calling one queues the write in call order;
the future resolves after the commit that holds it (so a ``stored`` answer always
follows its commit), or raises ProtocolError for a refused write, which then changed
nothing. Writes are committed in batches (group commit, relay/storage/writer.py).
Right after a commit the backend calls ``on_commit`` / ``on_group_commit`` with what it
stored, in commit order; the hub pushes it to the connections.

Every method's observable behaviour is pinned by tests/relay/storage (run against every
backend), so a new backend is correct when those pass.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence

from tenchat.common import groups as gr
from tenchat.common.frames import Deliver, GroupDeliver, GroupSummary, OneTimePrekey, SignedPrekey

from .records import (
    AuditEntry,
    BatchListener,
    BlobBegun,
    BundleRecord,
    CommitListener,
    GroupHead,
    GroupListener,
    HandleRecord,
    RetentionSwept,
    SealedAccess,
    Stored,
    SweptStories,
)

__all__ = ["Store"]


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
    async def sealed_access(self, user: bytes) -> SealedAccess | None:
        """Who may send ``user`` sealed messages (None: no one, never set)."""

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
    async def followers(self, user: bytes) -> list[bytes]:
        """The identities that follow ``user`` (approved follows): who may list its
        stories and posts by default, and who gets its ``story_new`` pushes."""

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
    def set_sealed_access(self, user: bytes, verifier: bytes, anyone: bool
                          ) -> asyncio.Future[None]:
        """Set who may send ``user`` sealed messages (replacing the previous setting)."""

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
    def put_story(self, author: bytes, story: bytes, expires_at: int, blob: bytes | None,
                  record: bytes) -> asyncio.Future[bool]:
        """Store a verified story record (id ``story``); expired if ``expires_at`` has
        passed; not_found unless ``blob`` (if given) is a stored blob of ``author``, which
        then expires with the story; idempotent for the same record, forbidden for another
        one with the same id. True if it was new."""

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
    async def device_list(self, user: bytes) -> bytes | None:
        """The signed device list of the account ``user``, else of the account that lists
        ``user`` as a device; None if neither."""

    @abc.abstractmethod
    def put_device_list(self, account: bytes, version: int, devices: list[bytes],
                        record: bytes) -> asyncio.Future[None]:
        """Store a verified device list of ``account`` (common.devices), replacing the
        stored one and its device index; forbidden unless ``version`` is greater than
        the stored one's, or ``devices`` holds a device another account lists."""

    @abc.abstractmethod
    def device_cursors(self, device: bytes, member: dict[bytes, int]
                       ) -> asyncio.Future[dict[bytes, int]]:
        """A linked device's group cursors, for the groups of its account (``member``:
        group -> the account's cursor): a group it has none for starts at the account's
        (stored now, so the account's acks don't move it)."""

    @abc.abstractmethod
    def device_group_ack(self, device: bytes, member: bytes, group: bytes,
                         upto: int) -> asyncio.Future[None]:
        """A linked device of ``member`` read ``group`` up to ``upto`` (at most the log's
        end); forbidden if ``member`` is not in the group."""

    @abc.abstractmethod
    def put_link(self, slot: bytes, blob: bytes, owner: bytes) -> asyncio.Future[None]:
        """Leave ``blob`` in the linking rendezvous ``slot`` for one taker, for
        LINK_TTL_MS (docs/protocol.md §6E); shared by every node on this store. Forbidden
        if the slot holds an unexpired blob (the first writer wins); quota_exceeded if
        ``owner`` left LINK_PER_OWNER unexpired ones already, or all of them together
        would pass ``link_bytes_max``."""

    @abc.abstractmethod
    def take_link(self, slot: bytes) -> asyncio.Future[bytes | None]:
        """The unexpired blob of ``slot``, deleted in the same statement (of two takes,
        even on two nodes, one gets it); None if empty or expired."""

    @abc.abstractmethod
    def sweep(self, now: int, limit: int) -> asyncio.Future[int]:
        """Delete up to ``limit`` expired messages and up to ``limit`` expired group
        entries in one transaction (and any expired link blobs); how many rows went (the
        larger of the two counts)."""

    @abc.abstractmethod
    def retention_sweep(
        self, queue_before: int, uploads_before: int, limit: int, audit_before: int = 0
    ) -> asyncio.Future[RetentionSwept]:
        """Delete up to ``limit`` queued messages and group log entries stored before
        ``queue_before`` (ms; 0: none), up to ``limit`` unfinished uploads started before
        ``uploads_before`` and up to ``limit`` audit rows written before ``audit_before``
        (0: none), oldest first, without a table scan."""

    # --- operations (relay/admin.py): audit, bans, invites, quotas, moderation ----------

    @abc.abstractmethod
    def audit_insert(self, entry: AuditEntry) -> asyncio.Future[int]:
        """Write an audit row (its ``id`` is ignored); the id it got."""

    @abc.abstractmethod
    def audit_add(self, row_id: int, count: int) -> asyncio.Future[None]:
        """Add ``count`` to the count of audit row ``row_id`` (repeats of it)."""

    @abc.abstractmethod
    async def audit_log(self, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` audit rows, oldest first."""

    @abc.abstractmethod
    async def is_banned(self, user: bytes) -> bool: ...

    @abc.abstractmethod
    async def bans_after(self, after: int) -> list[tuple[int, bytes]]:
        """(id, user) of bans made since ban id ``after`` (by anyone, the admin CLI
        included), in id order; ids only grow, so a running relay polls with the last."""

    @abc.abstractmethod
    async def last_ban(self) -> int:
        """The id of the newest ban; 0 if there was none."""

    @abc.abstractmethod
    async def blob_quota(self, user: bytes) -> int | None:
        """``user``'s own blob quota (``tenchat-relay admin quota``); None: the default."""

    @abc.abstractmethod
    def set_blob_quota(self, user: bytes, quota: int | None) -> asyncio.Future[None]:
        """Give ``user`` a blob quota of its own (None: back to the relay's default)."""

    @abc.abstractmethod
    def add_invites(self, codes: Sequence[str], expires_at: int) -> asyncio.Future[None]:
        """Store new invite codes (``expires_at`` 0: they never expire)."""

    @abc.abstractmethod
    def register_invited(
        self, user: bytes, handle: str, sig: bytes, code: str
    ) -> asyncio.Future[HandleRecord]:
        """``register`` on an invite-only relay: the invite ``code`` is checked and used up
        in the same transaction as the handle is bound, nothing changes if either is
        refused. As register (registering again uses nothing up), and invite_required
        (no code), bad_invite (unknown, used or expired)."""

    @abc.abstractmethod
    def moderate(
        self, action: str, target: bytes, reason: str, audit: AuditEntry
    ) -> asyncio.Future[None]:
        """A moderation ``action`` (common.frames.MODERATE_ACTIONS) and its audit row, in
        one transaction: remove_post (with its comments and reactions), remove_comment,
        ban or unban ``target``; not_found if there is nothing to remove or unban,
        malformed if a ban does not name a 32-byte identity."""

    # --- presence and liveness ------------------------------------------------------------

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

    # Whether rate limits are counted in the store, over every node sharing it
    # (relay/shared_limits.py); False: each node (the only one) counts in memory.
    shares_limits: bool = False

    async def spend_limits(self, node: str, spent: Sequence[tuple[str, bytes, float, float, float]]
                           ) -> list[tuple[float, bool]]:
        """Take what ``node`` spent from shared token buckets — (kind, key, rate a second,
        burst, tokens spent) each — refilled by the store's clock; per row, in order, the
        bucket's tokens after it, and whether another node spent on it lately. Only for
        a store that ``shares_limits``."""
        raise NotImplementedError("this store keeps no shared rate limits")

    async def prune_limits(self) -> int:
        """Forget shared buckets that are full again; how many (a chore of the leader)."""
        return 0

    async def lead(self) -> bool:
        """Whether this node is (or now becomes) the one of the nodes sharing this store
        that runs the cluster's chores (sweeps, retention). A store only one process uses
        (SQLite) always leads; PostgreSQL hands the lead to one node at a time, and to
        another when that node dies (relay/storage/postgres/lead.py)."""
        return True

    on_batch: BatchListener | None = None
    last_write_error: str | None = None

    @property
    @abc.abstractmethod
    def write_queue_depth(self) -> int:
        """Writes waiting for the writer (not counting the batch being committed)."""
