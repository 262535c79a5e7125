"""PostgreSQL: 1:1 message queues — enqueue with dedupe and queue caps, fetch, ack.

The hot path. A run of sends reads everything it needs for all its calls in one
statement (their retries, the blocks among their pairs, their seqs from the
``message_seq`` sequence; with queue caps, the queue sizes too, under per-recipient
advisory locks so two nodes cannot both fill the last place; the sizes are counters,
queues.py), and inserts what it queued in one more at the run's end: two round trips to
the database for any number of sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from tenchat.common.crypto.sealed import SEALED_SENDER
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Deliver

from ..dedupe import dedupe_row
from ..records import Stored
from ..writer import Call
from .base import PostgresBase, Tx, lock_keys, write
from .queues import READ_SIZES, tally_sql

__all__ = ["Messages"]

# What a run of sends reads: the retries among them (sent), the blocked (recipient,
# sender) pairs, and a seq for each; and with queue caps, it takes the recipients'
# advisory locks ($6, sorted: lock_keys), held to the commit, so that the queue sizes read
# next (a statement of its own, whose snapshot follows the locks) are not changed by
# another node's sends meanwhile. Taking them here saves the run a round trip.
#
# Each key is looked up on its own (LATERAL … LIMIT 1: a subquery the planner cannot turn
# into a join), so by the primary key whatever the table's statistics say. As a join, a
# `sent` that grew faster than autovacuum analyzes it (150,000 rows in the 15 s of a
# saturated run, still planned as 1,500) was read whole by a hash join on every run of
# sends: 19 ms a batch, and send → stored p50 at 1,000 msg/s went from 2 ms to 40 ms.
_READ_RUN: Final = (
    "SELECT ARRAY(SELECT (s.sender, s.msg_id, s.seq, s.at) FROM unnest($1::bytea[],"
    " $2::bytea[]) AS k (sender, msg_id), LATERAL (SELECT * FROM sent AS s"
    " WHERE s.sender = k.sender AND s.msg_id = k.msg_id LIMIT 1) AS s) AS known,"
    " ARRAY(SELECT (b.user_id, b.blocked) FROM unnest($3::bytea[], $5::bytea[])"
    " AS k (user_id, blocked), LATERAL (SELECT * FROM blocks AS b WHERE b.user_id ="
    " k.user_id AND b.blocked = k.blocked LIMIT 1) AS b) AS blocked,"
    " ARRAY(SELECT nextval('message_seq') FROM generate_series(1, $4)) AS seqs,"
    " (SELECT count(*) FROM unnest($6::bigint[]) AS k, LATERAL pg_advisory_xact_lock(k))"
    " AS locked"
)
# A run of acks in one statement, from arrays of (the call's index in the run, its user,
# a seq it names): a call naming a seq in another queue is refused and deletes nothing;
# the others' seqs are deleted, each once. RETURNING: what the queue sizes lose — not
# what another node's sweep deleted first (queues.py). `m.seq = ANY($3)` repeats the join's
# condition as one the primary key's index answers, so the plan stays an index scan
# however stale the statistics of a table full of just-deleted rows are (see _READ_RUN).
_ACK_RUN: Final = (
    "WITH a AS (SELECT * FROM unnest($1::int[], $2::bytea[], $3::bigint[])"
    " AS a (call, acker, seq)),"
    " refused AS (SELECT DISTINCT a.call FROM a JOIN messages AS m USING (seq)"
    " WHERE m.seq = ANY($3::bigint[]) AND m.recipient <> a.acker),"
    " d AS (DELETE FROM messages AS m USING a WHERE m.seq = ANY($3::bigint[])"
    " AND m.seq = a.seq AND m.recipient = a.acker"
    " AND a.call NOT IN (SELECT call FROM refused)"
    " RETURNING m.recipient, m.sender, length(m.body) AS size)"
    " SELECT ARRAY(SELECT call FROM refused) AS refused,"
    " ARRAY(SELECT (recipient, sender, size) FROM d) AS deleted"
)
# What it queued: messages, dedupe keys and contacts, from arrays, in one statement.
_INSERTS: Final = (
    "WITH m AS (INSERT INTO messages (seq, recipient, sender, msg_id, at, body, expires_at)"
    " SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[],"
    " $5::bigint[], $6::bytea[], $7::bigint[])),"
    " s AS (INSERT INTO sent (sender, msg_id, seq, at) SELECT * FROM unnest($8::bytea[],"
    " $9::bytea[], $10::bigint[], $11::bigint[])),"
    " c AS (INSERT INTO contacts (user_id, peer) SELECT * FROM unnest($12::bytea[],"
    " $13::bytea[]) ON CONFLICT DO NOTHING)"
)
_INSERT_RUN: Final = _INSERTS + " SELECT 1"
# The same, when it is the transaction's last statement but for the queue tally, with
# the tally ($14–$18: queues.py, rows in key order) in it: a round trip less per batch.
_INSERT_LAST_RUN: Final = _INSERTS + f", t AS ({tally_sql(14)}) SELECT 1"


class Messages(PostgresBase):
    async def pending(self, user: bytes, after: int, limit: int) -> list[Deliver]:
        rows = await self._read(
            "SELECT seq, msg_id, sender, at, body FROM messages"
            " WHERE recipient = $1 AND seq > $2 AND (expires_at = 0 OR expires_at > $3)"
            " ORDER BY seq LIMIT $4",
            user, after, self._clock(), limit,
        )
        return [Deliver(seq=s, msg=m, sender=f, at=a, body=b) for s, m, f, a, b in rows]

    @write
    async def enqueue(
        self, tx: Tx, recipient: bytes, sender: bytes, msg_id: bytes, body: bytes,
        expires_at: int = 0, conv: bool = False,
    ) -> Stored:
        run: _SendRun | None = tx.run.get("send")
        if run is None:  # the first send of this run: read for all of them
            run = tx.run["send"] = await _SendRun.start(self, tx)
        key = (sender, msg_id)
        stored = run.known.get(key)
        if stored is not None:  # a retry: the original answer
            return stored
        pair = (recipient, sender)
        size = len(body)
        if run.limited and _over(run.queued.get(recipient), size, run.queue_limits):
            count, nbytes = run.queued[recipient]
            raise ProtocolError(
                ErrorCode.QUEUE_FULL,
                f"the recipient has {count} messages ({nbytes} bytes) waiting,"
                " the most this relay queues; retry later")
        # A sealed message has no sender to share by (docs/protocol.md §5.10).
        if (run.shared and sender != SEALED_SENDER
                and _over(run.queued_from.get(pair), size, run.share_limits)):
            count, nbytes = run.queued_from[pair]
            raise ProtocolError(
                ErrorCode.QUEUE_SHARE,
                f"{count} of your messages ({nbytes} bytes) wait for this"
                f" recipient, the most one sender may queue ({self.queue_share}%"
                " of the queue); retry once they have read some")
        stored = run.known[key] = Stored(run.seqs.pop(), run.at)
        run.sent.append((*dedupe_row(sender, msg_id), stored.seq, run.at))
        if pair in run.blocked:
            # A blocked sender gets the same answer, but nothing is queued or pushed; its
            # seq came from the sequence, so it is never handed out again.
            return stored
        for counts in (run.queued.setdefault(recipient, [0, 0]),
                       run.queued_from.setdefault(pair, [0, 0])):
            counts[0] += 1
            counts[1] += size
        tx.queues.add(recipient, sender, size)
        # Only a message the user wrote makes a contact (security review M3).
        if conv:
            run.contacts.append((sender, recipient))
        run.messages.append((stored.seq, recipient, sender, msg_id, run.at, body, expires_at))
        tx.out.stored.append(
            (recipient, Deliver(stored.seq, msg_id, sender, run.at, body), expires_at, conv))
        return stored

    @write
    async def ack(self, tx: Tx, user: bytes, seqs: Sequence[int]) -> None:
        run: _AckRun | None = tx.run.get("ack")
        if run is None:  # the first ack of this run: the whole run, in one statement
            run = tx.run["ack"] = await _AckRun.start(tx)
        if run.next() in run.refused:
            raise ProtocolError(ErrorCode.FORBIDDEN, "a seq is in another queue")


def _over(size: list[int] | None, body: int, limits: tuple[int, int]) -> bool:
    """Would one more message of ``body`` bytes pass ``limits`` (messages, bytes; 0: no
    limit) of a queue of ``size`` (messages, bytes)?"""
    count, nbytes = size or (0, 0)
    return bool((limits[0] and count >= limits[0]) or (limits[1] and nbytes + body > limits[1]))


def _ack_args(call: Call) -> tuple[bytes, Sequence[int]]:
    """(user, seqs) of a queued ack call."""
    args = dict(zip(("user", "seqs"), call.args, strict=False), **call.kwargs)
    return args["user"], args["seqs"]


def _send_args(call: Call) -> dict[str, Any]:
    names = ("recipient", "sender", "msg_id")
    return dict(zip(names, call.args, strict=False), **call.kwargs)


class _AckRun:
    """A run of acks, done by its first call for all of them (_ACK_RUN): the indexes of
    the calls refused; each call then takes its index (``next``), in call order."""

    __slots__ = ("refused", "_next")

    def __init__(self, refused: set[int]) -> None:
        self.refused = refused
        self._next = 0

    @classmethod
    async def start(cls, tx: Tx) -> _AckRun:
        index: list[int] = []
        users: list[bytes] = []
        seqs: list[int] = []
        for i, call in enumerate(tx.calls):
            user, acked = _ack_args(call)
            for seq in acked:
                index.append(i)
                users.append(user)
                seqs.append(seq)
        row = await tx.one(_ACK_RUN, index, users, seqs)
        tx.queues.take(row["deleted"])
        return cls(set(row["refused"]))

    def next(self) -> int:
        self._next += 1
        return self._next - 1


class _SendRun:
    """The state of one run of sends, read up front for all its calls: their retries,
    the blocked (recipient, sender) pairs, the queue sizes (with caps), the seqs."""

    __slots__ = ("at", "known", "blocked", "seqs", "limited", "shared", "queue_limits",
                 "share_limits", "queued", "queued_from", "sent", "messages", "contacts")

    def __init__(self, store: Messages, tx: Tx) -> None:
        self.at = store._clock()
        self.queue_limits = (store.queue_max, store.queue_bytes_max)
        self.share_limits = (store.share_max, store.share_bytes_max)
        self.limited = any(self.queue_limits)
        self.shared = any(self.share_limits)
        self.known: dict[tuple[bytes, bytes], Stored] = {}
        self.blocked: set[tuple[bytes, bytes]] = set()
        self.seqs: list[int] = []  # popped from the end: ascending
        self.queued: dict[bytes, list[int]] = {}  # recipient -> [messages, body bytes]
        self.queued_from: dict[tuple[bytes, bytes], list[int]] = {}
        # inserted at the run's end (insert)
        self.messages: list[tuple[Any, ...]] = []
        self.sent: list[tuple[bytes, bytes, int, int]] = []
        self.contacts: list[tuple[bytes, bytes]] = []

    @classmethod
    async def start(cls, store: Messages, tx: Tx) -> _SendRun:
        run = cls(store, tx)
        calls = [_send_args(call) for call in tx.calls]
        senders = [c["sender"] for c in calls]
        recipients = [c["recipient"] for c in calls]
        # One round trip: the retries among them, the blocked pairs, their seqs, and the
        # locks of their queues (with caps).
        # the stored digest of each (sender, msg_id): dedupe_row (no sender on the disk)
        keys = {dedupe_row(c["sender"], c["msg_id"]): (c["sender"], c["msg_id"])
                for c in calls}
        counted = run.limited or run.shared
        row = await tx.one(_READ_RUN, [k[0] for k in keys], [k[1] for k in keys],
                           recipients, len(calls), senders,
                           lock_keys(recipients) if counted else [])
        run.known = {keys[(bytes(f), bytes(m))]: Stored(q, a)
                     for f, m, q, a in row["known"]}
        run.blocked = {(bytes(u), bytes(b)) for u, b in row["blocked"]}
        run.seqs = sorted(row["seqs"], reverse=True)
        if counted:
            await run._count_queues(tx, recipients)
        tx.at_end(run.insert)
        return run

    async def insert(self, tx: Tx) -> None:
        """What the run queued, in one statement (one round trip)."""
        if not self.sent:
            return
        m = self.messages
        args = (
            [r[0] for r in m], [r[1] for r in m], [r[2] for r in m],
            [r[3] for r in m], [r[4] for r in m], [r[5] for r in m], [r[6] for r in m],
            [r[0] for r in self.sent], [r[1] for r in self.sent], [r[2] for r in self.sent],
            [r[3] for r in self.sent], [c[0] for c in self.contacts],
            [c[1] for c in self.contacts])
        if tx.last_run and (tally := tx.queues.statement()) is not None:
            await tx.run_sql(_INSERT_LAST_RUN, *args, *tally[1])
            tx.queues.clear()  # written
        else:
            await tx.run_sql(_INSERT_RUN, *args)

    async def _count_queues(self, tx: Tx, recipients: list[bytes]) -> None:
        """The sizes of the queues this run sends to, read under their advisory locks
        (taken by _READ_RUN, held to the commit): no other node adds to them meanwhile."""
        wanted = set(recipients)
        rows = await tx.all(READ_SIZES, list(wanted))
        # and what this transaction's earlier runs changed, not written yet (queues.py)
        for recipient, sender, count, nbytes in [*rows, *tx.queues.sizes(wanted)]:
            recipient, sender = bytes(recipient), bytes(sender)
            for counts in (self.queued.setdefault(recipient, [0, 0]),
                           self.queued_from.setdefault((recipient, sender), [0, 0])):
                counts[0] += count
                counts[1] += nbytes
