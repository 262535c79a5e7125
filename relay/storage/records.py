"""The record types the storage interface takes and returns, and its listener types.

Plain frozen dataclasses, the same for every backend: what a handler, the hub or an
operations command sees of the store never depends on where it is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenchat.common.frames import Deliver, GroupDeliver, OneTimePrekey, SignedPrekey

__all__ = [
    "HandleRecord", "BundleRecord", "Stored", "GroupHead", "MembersChanged", "GroupEntry",
    "BlobBegun", "SweptStories", "RetentionSwept", "AuditEntry", "CommitListener",
    "GroupListener", "BatchListener", "StoredMessage", "SealedAccess",
]


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

    def __reduce__(self) -> tuple[type[Stored], tuple[int, int]]:
        # the writer process answers one per send: pickled as a tuple, not through
        # dataclasses' generic __getstate__ (7 % of that process's time)
        return Stored, (self.seq, self.at)


@dataclass(frozen=True, slots=True)
class SealedAccess:
    """Who may send a user sealed messages: holders of the access key whose SHA-256
    verifier this is (empty: no key registered), or anyone."""

    verifier: bytes
    anyone: bool


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
    """Committed: a new entry in a group's log (0: never expires). ``prev``: the gseq of
    the group's entry before it (0: none), when the store numbers each group's entries
    in commit order (PostgreSQL, under the group's row lock) so that a node receiving
    entries from other nodes can tell one is still on its way; -1: not known (one node,
    where entries arrive in commit order anyway)."""

    item: GroupDeliver
    expires_at: int
    prev: int = -1


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


@dataclass(frozen=True, slots=True)
class RetentionSwept:
    """What one retention transaction deleted; ``uploads`` are (user, blob) of the expired
    unfinished uploads, whose partial files the caller removes."""

    messages: int
    group_entries: int
    uploads: list[tuple[bytes, bytes]]
    audit: int = 0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log (relay/admin.py): who did what to whom, and how often
    (``count``: repeats aggregated into one row). ``id`` is 0 until stored."""

    at: int
    actor: bytes | None
    action: str
    target: bytes | None
    detail: str = ""
    ip: str | None = None
    count: int = 1
    id: int = 0


# A stored 1:1 message as the commit listener gets it: (recipient, message, expires_at,
# conv: the user wrote it, so it makes the recipient a contact).
StoredMessage = tuple[bytes, Deliver, int, bool]

# Called synchronously, right after a commit, with the stored messages in seq order.
CommitListener = Callable[[list[StoredMessage]], None]
# Called synchronously, right after a commit, with the group events in commit order.
GroupListener = Callable[[list["MembersChanged | GroupEntry"]], None]
# Called after each write transaction with (seconds it took, ops in it, committed or not).
BatchListener = Callable[[float, int, bool], None]
