"""PostgreSQL: the size of each 1:1 queue, per sender (table ``queue_sizes``).

The queue caps read these counters (messages.py) instead of counting a queue's rows on
every send: that count went through every acked row not yet vacuumed too, so it slowed
as a run went on. Every write that queues or deletes messages (enqueue, ack, the expiry
and retention sweeps) notes its changes in the transaction's :class:`QueueTally`, fed
from the rows it inserted or deleted (``DELETE … RETURNING``, so a row another node
deleted first is not counted twice); the tally is written once, at the end of the
transaction (``PostgresBase._run_calls``), in one statement, rows in key order. So a
transaction locks counter rows in that statement only, and in one order: two nodes'
transactions never wait for each other in a cycle over them.

Each (recipient, sender) has two rows: what sends added (``taken`` false) and, negative,
what deletes took (``taken`` true); the size is their sum. So a send (on the sender's
node) and an ack (on the recipient's) never wait for each other's commit over one row —
with one row per pair every ack and send of a busy pair on two nodes did, their commits
in turn. Sends to one recipient are serialized by its advisory lock anyway.

A queue's counters are read under its recipient's advisory lock (no other send changes
them meanwhile) and see what is committed: an ack or sweep not yet committed only makes
the queue look fuller than it is, as a count of its rows did. The rows are never
deleted (as a pair's ``contacts`` row is not): no insert/delete churn for a busy pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

__all__ = ["QueueTally", "READ_SIZES", "tally_sql"]

# The counters of the queues a run of sends goes to: rows of (recipient, sender,
# messages, bytes), two a pair (added, taken), to sum.
READ_SIZES: Final = (
    "SELECT recipient, sender, messages, bytes FROM queue_sizes"
    " WHERE recipient = ANY($1::bytea[])"
)


def tally_sql(first: int = 1) -> str:
    """The statement writing a tally (:meth:`QueueTally.statement`'s five arrays as
    parameters ``$first`` … ``$first+4``; later ones when it is part of a bigger one)."""
    a, b, c, d, e = range(first, first + 5)
    return (
        "INSERT INTO queue_sizes AS q (recipient, sender, taken, messages, bytes) SELECT *"
        f" FROM unnest(${a}::bytea[], ${b}::bytea[], ${c}::boolean[], ${d}::bigint[],"
        f" ${e}::bigint[]) ON CONFLICT (recipient, sender, taken) DO UPDATE"
        " SET messages = q.messages + excluded.messages, bytes = q.bytes + excluded.bytes"
    )


_TALLY: Final = tally_sql()


class QueueTally:
    """What one transaction changes in the queue sizes: (recipient, sender, taken) ->
    [messages, body bytes], added by sends or (negative) taken by deletes."""

    __slots__ = ("_delta",)

    def __init__(self) -> None:
        self._delta: dict[tuple[bytes, bytes, bool], list[int]] = {}

    def add(self, recipient: bytes, sender: bytes, size: int) -> None:
        """A queued message of ``size`` body bytes."""
        self._change((recipient, sender, False), 1, size)

    def take(self, rows: Iterable[Any]) -> None:
        """Deleted messages: rows of (recipient, sender, body length)."""
        for recipient, sender, size in rows:
            self._change((bytes(recipient), bytes(sender), True), -1, -size)

    def _change(self, key: tuple[bytes, bytes, bool], count: int, size: int) -> None:
        delta = self._delta.setdefault(key, [0, 0])
        delta[0] += count
        delta[1] += size

    def sizes(self, recipients: set[bytes]) -> list[tuple[bytes, bytes, int, int]]:
        """What is not written yet of these recipients' queues: (recipient, sender,
        messages, bytes), to add to what :data:`READ_SIZES` reads."""
        return [(r, s, d[0], d[1]) for (r, s, _), d in self._delta.items() if r in recipients]

    def clear(self) -> None:
        """Forget what is written (by a statement that wrote :meth:`statement`'s rows)."""
        self._delta.clear()

    def statement(self) -> tuple[str, list[Any]] | None:
        """The one statement that writes the tally, rows in key order (the lock order);
        None if it changes nothing."""
        rows = sorted((k, d) for k, d in self._delta.items() if d[0] or d[1])
        if not rows:
            return None
        return _TALLY, [[k[i] for k, _ in rows] for i in range(3)] + [
            [d[0] for _, d in rows], [d[1] for _, d in rows]]
