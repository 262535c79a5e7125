"""SQLite: 1:1 message queues — enqueue with dedupe and queue caps, fetch, ack.

The hot path. A run of sends looks its retries up in the writer's copy of `sent_log` and
then in one statement per 400 sends, and inserts with one executemany per table at the
end of the run (``Tx.defer``); dedupe keys go to `sent_log` (sent_log.py); queue sizes
are cached per recipient (and per sender, for queue_share) and counted again before a
refusal.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Final

from tenchat.common.crypto.sealed import SEALED_SENDER
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Deliver

from ..dedupe import dedupe_row
from ..records import Stored
from ..writer import Call, write
from .base import SQLiteBase, Tx, chunks, marks
from .sent_log import INSERT_SENT_LOG

__all__ = ["Messages"]

_INSERT_MESSAGE: Final = (
    "INSERT INTO messages (seq, recipient, sender, msg_id, at, body, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_CONTACT: Final = "INSERT OR IGNORE INTO contacts (user, peer) VALUES (?, ?)"
_CACHE_MAX: Final = 100_000  # queue sizes cached (recipients, or pairs) before starting over


class Messages(SQLiteBase):
    async def pending(self, user: bytes, after: int, limit: int) -> list[Deliver]:
        rows = await self._read(
            "SELECT seq, msg_id, sender, at, body FROM messages"
            " WHERE recipient = ? AND seq > ? AND (expires_at = 0 OR expires_at > ?)"
            " ORDER BY seq LIMIT ?",
            (user, after, self._clock(), limit),
        )
        return [Deliver(seq=s, msg=m, sender=f, at=a, body=b) for s, m, f, a, b in rows]

    @write
    def enqueue(
        self, tx: Tx, recipient: bytes, sender: bytes, msg_id: bytes, body: bytes,
        expires_at: int = 0, conv: bool = False,
    ) -> Stored:
        run: _SendRun | None = tx.run.get("send")
        if run is None:  # the first send of this run
            run = tx.run["send"] = _SendRun(self, tx)
        key = (sender, msg_id)
        stored = run.known.get(key)
        if stored is not None:  # a retry: the original answer
            return stored
        pair = (recipient, sender)
        size = len(body)
        # (the cached size checked inline first: the hot path makes no call for it)
        if run.limited and ((queued := self._queued.get(recipient)) is None or _over(
                queued, size, run.queue_limits)) and (full := _too_full(
                tx, self._queued, recipient, None, size, run.added, run.queue_limits)):
            raise ProtocolError(
                ErrorCode.QUEUE_FULL,
                f"the recipient has {full[0]} messages ({full[1]} bytes) waiting,"
                " the most this relay queues; retry later")
        # A sealed message has no sender to share by (docs/protocol.md §5.10).
        shared = run.shared and sender != SEALED_SENDER
        if shared and ((queued := self._queued_from.get(pair)) is None or _over(
                queued, size, run.share_limits)) and (full := _too_full(
                tx, self._queued_from, pair, sender, size, run.added_from, run.share_limits)):
            raise ProtocolError(
                ErrorCode.QUEUE_SHARE,
                f"{full[0]} of your messages ({full[1]} bytes) wait for this"
                f" recipient, the most one sender may queue ({self.queue_share}%"
                " of the queue); retry once they have read some")
        self._next_seq += 1
        at = run.at
        stored = run.known[key] = Stored(self._next_seq, at)
        run.sent.append((*run.digests[key], stored.seq, at))
        if recipient in self._blockers and tx.one(
                "SELECT 1 FROM blocks WHERE user = ? AND blocked = ?", pair):
            # A blocked sender gets the same answer, but nothing is queued or pushed;
            # its seq is recorded as used, so a restart does not hand it out again.
            if not tx.run_sql("UPDATE sqlite_sequence SET seq = max(seq, ?)"
                              " WHERE name = 'messages'", (stored.seq,)):
                tx.run_sql("INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', ?)",
                           (stored.seq,))
            return stored
        if run.limited:
            for counts in (self._queued[recipient], run.added.setdefault(recipient, [0, 0])):
                counts[0] += 1
                counts[1] += size
        if shared:
            for counts in (self._queued_from[pair], run.added_from.setdefault(pair, [0, 0])):
                counts[0] += 1
                counts[1] += size
        # Only a message the user wrote makes a contact (security review M3): receipts
        # and sender-key distributions go out automatically.
        if conv and (contact := (sender, recipient)) not in self._contacts:
            self._contacts.add(contact)
            run.contacts.append(contact)
        run.messages.append((stored.seq, recipient, sender, msg_id, at, body, expires_at))
        run.stored.append(
            (recipient, Deliver(stored.seq, msg_id, sender, at, body), expires_at, conv))
        return stored

    @write
    def ack(self, tx: Tx, user: bytes, seqs: Sequence[int]) -> None:
        run: _AckRun | None = tx.run.get("ack")
        if run is None:  # the first ack of this run: the rows of all its seqs at once
            run = tx.run["ack"] = _AckRun(self, tx)
        rows = run.rows
        if any((row := rows.get(s)) is not None and row[0] != user for s in seqs):
            raise ProtocolError(ErrorCode.FORBIDDEN, "a seq is in another queue")
        for seq in seqs:
            row = rows.pop(seq, None)  # popped: a seq acked twice is deleted once
            if row is None:
                continue  # in no queue (acked already)
            recipient, size, sender = row
            run.doomed.append((seq,))
            for queue in (self._queued.get(recipient),
                          self._queued_from.get((recipient, sender))):
                if queue is not None:
                    queue[0] -= 1
                    queue[1] -= size


def _too_full(tx: Tx, cache: dict[Any, list[int]], key: Any, sender: bytes | None,
              body: int, added: dict[Any, list[int]],
              limits: tuple[int, int]) -> list[int] | None:
    """None if one more message of ``body`` bytes keeps the queue ``key`` (a
    recipient's, or one sender's part of it) within ``limits`` (messages, bytes; 0:
    no limit); else its size. The cached size comes first; a queue that looks full
    is counted again (the cache may be too high), with what this run queued."""
    size = cache.get(key)
    if size is not None and not _over(size, body, limits):
        return None
    recipient = key[0] if sender is not None else key
    count, nbytes = _queue_size(tx, recipient, sender)
    extra = added.get(key, (0, 0))
    size = cache[key] = [count + extra[0], nbytes + extra[1]]
    return size if _over(size, body, limits) else None


def _over(size: list[int], body: int, limits: tuple[int, int]) -> bool:
    """Would one more message of ``body`` bytes pass ``limits`` (messages, bytes)?"""
    return bool((limits[0] and size[0] >= limits[0])
                or (limits[1] and size[1] + body > limits[1]))


def _queue_size(tx: Tx, recipient: bytes, sender: bytes | None = None) -> tuple[int, int]:
    # length() of a blob reads only its header, not the body
    if sender is None:
        count, size = tx.one("SELECT count(*), coalesce(sum(length(body)), 0) FROM messages"
                             " WHERE recipient = ?", (recipient,))
    else:
        count, size = tx.one("SELECT count(*), coalesce(sum(length(body)), 0) FROM messages"
                             " WHERE recipient = ? AND sender = ?", (recipient, sender))
    return int(count), int(size)


class _SendRun:
    """The state of one run of sends: its retries (found up front), what it queued (not
    inserted yet: rows for the executemany at the run's end), one timestamp."""

    __slots__ = ("at", "digests", "known", "limited", "shared", "queue_limits", "share_limits",
                 "added", "added_from", "sent", "messages", "contacts", "stored")

    def __init__(self, store: Messages, tx: Tx) -> None:
        self.at = store._clock()
        # (sender, msg_id) -> its dedupe row's key (a SHA-512 each: computed once)
        self.digests = {key: dedupe_row(*key) for key in map(_send_key, tx.calls)}
        self.known = _sent_before(store, tx, self.digests)  # (sender, msg_id) -> Stored
        self.queue_limits = (store.queue_max, store.queue_bytes_max)
        self.share_limits = (store.share_max, store.share_bytes_max)
        self.limited = any(self.queue_limits)
        self.shared = any(self.share_limits)
        self.added: dict[bytes, list[int]] = {}  # recipient -> [messages, bytes] queued
        self.added_from: dict[tuple[bytes, bytes], list[int]] = {}  # per (recipient, sender)
        # inserted at the run's end in this order (Tx.end_run)
        self.messages = tx.rows(_INSERT_MESSAGE)
        self.contacts = tx.rows(_INSERT_CONTACT)
        self.sent = tx.rows(INSERT_SENT_LOG)  # the dedupe keys (sqlite/sent_log.py)
        tx.after_commit.append(functools.partial(store._sent_log.added, self.sent))
        tx.after_commit.append(functools.partial(
            _remember_queued, store, store._other_deletes, self.messages))
        self.stored = tx.out.stored
        for cache, most in ((store._queued, _CACHE_MAX), (store._queued_from, _CACHE_MAX),
                            (store._contacts, 2 * _CACHE_MAX)):
            if len(cache) > most:
                cache.clear()


class _AckRun:
    """The state of one run of acks: the queued rows of every seq it names, from the
    writer's recent messages or read up front (one statement per 900 seqs), popped as
    they are acked; the seqs to delete at the run's end."""

    __slots__ = ("rows", "doomed")

    def __init__(self, store: Messages, tx: Tx) -> None:
        recent = store._recent
        self.rows: dict[int, tuple[bytes, int, bytes]] = {}  # seq -> (recipient, size, sender)
        unknown = []
        # (popped now: if this transaction rolls back, its rows are read next time)
        for seq in sorted({s for call in tx.calls for s in _ack_seqs(call)}):
            if (row := recent.pop(seq, None)) is not None:
                self.rows[seq] = row
            else:
                unknown.append(seq)
        for chunk in chunks(unknown, 900):
            for seq, recipient, size, sender in tx.all(
                    "SELECT seq, recipient, length(body), sender FROM messages"
                    f" WHERE seq IN ({marks(len(chunk))})", chunk):
                self.rows[seq] = (recipient, size, sender)
        self.doomed = tx.rows("DELETE FROM messages WHERE seq = ?")


def _remember_queued(store: Messages, deletes: int, messages: list[tuple[Any, ...]]) -> None:
    """A run's messages committed: what their acks will need (see SQLiteBase._recent)."""
    recent = store._recent
    if store._other_deletes != deletes:
        return  # a sweep in the same transaction may have deleted some of them
    if len(recent) > _CACHE_MAX:
        recent.clear()
    for seq, recipient, sender, _msg_id, _at, body, _expires_at in messages:
        recent[seq] = (recipient, len(body), sender)


def _ack_seqs(call: Call) -> Sequence[int]:
    return call.args[1] if len(call.args) > 1 else call.kwargs["seqs"]


def _send_key(call: Call) -> tuple[bytes, bytes]:
    """(sender, msg_id) of a queued enqueue call."""
    args = call.args
    if len(args) >= 3:
        return args[1], args[2]
    named = dict(zip(("recipient", "sender", "msg_id"), args, strict=False), **call.kwargs)
    return named["sender"], named["msg_id"]


def _sent_before(store: Messages, tx: Tx, digests: dict[tuple[bytes, bytes], tuple[bytes, bytes]]
                 ) -> dict[tuple[bytes, bytes], Stored]:
    """What the sends of this run got when they were stored before (retries): the latest
    in the writer's copy of `sent_log`, the rest in `sent` (those its Bloom filter may
    hold), one statement per 400.
    ``digests``: each send's (sender, msg_id) and its stored digest (dedupe_row: no
    sender on the disk)."""
    known: dict[tuple[bytes, bytes], Stored] = {}
    keys = {digest: key for key, digest in digests.items()}
    logged = store._sent_log.keys
    for digest in [digest for digest in keys if digest in logged]:
        known[keys.pop(digest)] = logged[digest]
    # only the keys `sent` may hold (nearly every new send is known not to: sent_filter.py)
    may_hold = store._sent_log.filter.may_hold
    for chunk in chunks([digest for digest in keys if may_hold(digest[0])], 400):
        # A join, not "(sender, msg_id) IN (VALUES ...)": SQLite scans the table for that.
        rows = tx.all(
            "SELECT s.sender, s.msg_id, s.seq, s.at FROM (VALUES "
            + ",".join(["(?,?)"] * len(chunk))
            + ") AS k JOIN sent AS s ON s.sender = k.column1 AND s.msg_id = k.column2",
            [v for key in chunk for v in key])
        for sender, msg_id, seq, at in rows:
            known[keys[(bytes(sender), bytes(msg_id))]] = Stored(seq, at)
    return known
