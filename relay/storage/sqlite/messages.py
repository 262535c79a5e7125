"""SQLite: 1:1 message queues — enqueue with dedupe and queue caps, fetch, ack.

The hot path. A run of sends costs one dedupe look-up each (primary key of ``sent``) and
one executemany per table at the end of the run (``Tx.defer``); queue sizes are cached
per recipient (and per sender, for queue_share) and counted again before a refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Deliver

from ..records import Stored
from ..writer import write
from .base import SQLiteBase, Tx, chunks, marks

__all__ = ["Messages"]

_INSERT_MESSAGE: Final = (
    "INSERT INTO messages (seq, recipient, sender, msg_id, at, body, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SENT: Final = "INSERT INTO sent (sender, msg_id, seq, at) VALUES (?, ?, ?, ?)"
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
        run = tx.run
        if not run:  # the first send of this run
            run["at"] = self._clock()
            run["known"] = {}  # (sender, msg_id) -> Stored: this run's sends
            run["added"] = {}  # recipient -> [messages, bytes] this run queued
            run["added_from"] = {}  # the same per (recipient, sender)
            if len(self._queued) > _CACHE_MAX:
                self._queued.clear()
            if len(self._queued_from) > _CACHE_MAX:
                self._queued_from.clear()
            if len(self._contacts) > 2 * _CACHE_MAX:
                self._contacts.clear()
        key = (sender, msg_id)
        known: dict[tuple[bytes, bytes], Stored] = run["known"]
        stored = known.get(key)
        if stored is None:
            row = tx.one("SELECT seq, at FROM sent WHERE sender = ? AND msg_id = ?", key)
            stored = Stored(*row) if row else None
        if stored is not None:  # a retry: the original answer
            return stored
        pair = (recipient, sender)
        size = len(body)
        if self.queue_max or self.queue_bytes_max:
            self._check_queue(tx, recipient, size, run["added"])
        if self.share_max or self.share_bytes_max:
            self._check_share(tx, pair, size, run["added_from"])
        self._next_seq += 1
        at = run["at"]
        stored = known[key] = Stored(self._next_seq, at)
        tx.defer(_INSERT_SENT, (sender, msg_id, stored.seq, at))
        if recipient in self._blockers and tx.one(
                "SELECT 1 FROM blocks WHERE user = ? AND blocked = ?", pair):
            # A blocked sender gets the same answer, but nothing is queued or pushed;
            # its seq is recorded as used, so a restart does not hand it out again.
            if not tx.run_sql("UPDATE sqlite_sequence SET seq = max(seq, ?)"
                              " WHERE name = 'messages'", (stored.seq,)):
                tx.run_sql("INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', ?)",
                           (stored.seq,))
            return stored
        for counts in (self._queued.get(recipient), run["added"].setdefault(recipient, [0, 0]),
                       self._queued_from.get(pair), run["added_from"].setdefault(pair, [0, 0])):
            if counts is not None:
                counts[0] += 1
                counts[1] += size
        # Only a message the user wrote makes a contact (security review M3): receipts
        # and sender-key distributions go out automatically.
        contact = (sender, recipient)
        if conv and contact not in self._contacts:
            self._contacts.add(contact)
            tx.defer(_INSERT_CONTACT, contact)
        tx.defer(_INSERT_MESSAGE, (stored.seq, recipient, sender, msg_id, at, body, expires_at))
        tx.out.stored.append(
            (recipient, Deliver(stored.seq, msg_id, sender, at, body), expires_at, conv))
        return stored

    def _check_queue(self, tx: Tx, recipient: bytes, body: int,
                     added: dict[bytes, list[int]]) -> None:
        """queue_full if one more message of ``body`` bytes would pass queue_max or
        queue_bytes_max (the cached size first; counted again before refusing)."""
        size = self._queued.get(recipient)
        if size is None:
            size = self._queued[recipient] = _queue_size(tx, recipient)
            extra = added.get(recipient, [0, 0])
            size[0] += extra[0]
            size[1] += extra[1]
        if not self._over(size, body):
            return
        size = _queue_size(tx, recipient)  # the cached size may be too high
        extra = added.get(recipient, [0, 0])
        size = self._queued[recipient] = [size[0] + extra[0], size[1] + extra[1]]
        if self._over(size, body):
            raise ProtocolError(
                ErrorCode.QUEUE_FULL,
                f"the recipient has {size[0]} messages ({size[1]} bytes) waiting,"
                " the most this relay queues; retry later")

    def _check_share(self, tx: Tx, pair: tuple[bytes, bytes], body: int,
                     added: dict[tuple[bytes, bytes], list[int]]) -> None:
        """queue_share if one more message of ``body`` bytes would pass one sender's
        part of the recipient's queue."""
        size = self._queued_from.get(pair)
        if size is None:
            size = self._queued_from[pair] = _queue_size(tx, *pair)
            extra = added.get(pair, [0, 0])
            size[0] += extra[0]
            size[1] += extra[1]
        if not self._over_share(size, body):
            return
        size = _queue_size(tx, *pair)  # counted again, with what this run queued
        extra = added.get(pair, [0, 0])
        size = self._queued_from[pair] = [size[0] + extra[0], size[1] + extra[1]]
        if self._over_share(size, body):
            raise ProtocolError(
                ErrorCode.QUEUE_SHARE,
                f"{size[0]} of your messages ({size[1]} bytes) wait for this"
                f" recipient, the most one sender may queue ({self.queue_share}%"
                " of the queue); retry once they have read some")

    def _over(self, size: list[int], body: int) -> bool:
        """Would one more message of ``body`` bytes pass queue_max or queue_bytes_max?"""
        return bool((self.queue_max and size[0] >= self.queue_max)
                    or (self.queue_bytes_max and size[1] + body > self.queue_bytes_max))

    def _over_share(self, size: list[int], body: int) -> bool:
        """Would one more message of ``body`` bytes pass one sender's queue_share?"""
        return bool((self.share_max and size[0] >= self.share_max)
                    or (self.share_bytes_max and size[1] + body > self.share_bytes_max))

    @write
    def ack(self, tx: Tx, user: bytes, seqs: Sequence[int]) -> None:
        rows = []
        for chunk in chunks(sorted(set(seqs)), 900):
            rows += tx.all("SELECT seq, recipient, length(body), sender FROM messages"
                           f" WHERE seq IN ({marks(len(chunk))})", chunk)
        if any(recipient != user for _, recipient, _, _ in rows):
            raise ProtocolError(ErrorCode.FORBIDDEN, "a seq is in another queue")
        acked: set[int] = tx.run.setdefault("acked", set())  # deleted at the run's end
        for seq, recipient, size, sender in rows:
            if seq in acked:
                continue
            acked.add(seq)
            tx.defer("DELETE FROM messages WHERE seq = ?", (seq,))
            for queue in (self._queued.get(recipient),
                          self._queued_from.get((recipient, sender))):
                if queue is not None:
                    queue[0] -= 1
                    queue[1] -= size


def _queue_size(tx: Tx, recipient: bytes, sender: bytes | None = None) -> list[int]:
    # length() of a blob reads only its header, not the body
    if sender is None:
        count, size = tx.one("SELECT count(*), coalesce(sum(length(body)), 0) FROM messages"
                             " WHERE recipient = ?", (recipient,))
    else:
        count, size = tx.one("SELECT count(*), coalesce(sum(length(body)), 0) FROM messages"
                             " WHERE recipient = ? AND sender = ?", (recipient, sender))
    return [int(count), int(size)]
