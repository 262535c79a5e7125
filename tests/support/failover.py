"""Test clients of a relay with several nodes, over the client's own connection and
failover code (``RelayConnection``, ``RelayList``, ``open_first`` from
client/connection.py), without the rest of the client core (no cache, no crypto: the
bodies are opaque bytes, as the relay sees them).

A :class:`FailoverClient` keeps one identity connected: it dials its relay list (its
own node first), and when the connection is lost it moves on to the next node, as the
real client does. It records when it got back (``connects``), and — as a recipient —
every message pushed to it, by message id, and which ones it acked with the relay's
confirmation, so a fault test can count losses and duplicates exactly:

- ``delivered[msg]``: the seqs a message id arrived with (more than one: stored twice);
- ``after_ack``: message ids pushed again after their ack was confirmed (a duplicate the
  protocol does not allow; a message pushed again before its ack was confirmed — the
  connection died first — is a legal redelivery, which the real client drops by id).

:class:`Load` runs senders at a steady rate to recipients spread over the nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from nacl.signing import SigningKey

from tenchat.client.connection import (
    ConnectionLost,
    RelayConnection,
    RelayError,
    RelayList,
    RelayUnreachable,
    open_first,
)
from tenchat.common.frames import (
    Ack,
    Deliver,
    PublishPrekeys,
    Send,
    SignedPrekey,
    Stored,
    Subscribe,
)
from tenchat.common.identity import signed_prekey_message

__all__ = ["FailoverClient", "Load", "Sent"]

RETRY = 0.05  # s between rounds over the list when no node answers (all down)


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the relay answered *stored*."""

    msg: bytes
    to: bytes
    seq: int


class FailoverClient:
    def __init__(self, urls: Sequence[str], first: int = 0, *, subscribe: bool = False,
                 key: SigningKey | None = None) -> None:
        first %= len(urls)
        self.home = urls[first]  # the node it dials first
        self.relays = RelayList(",".join([*urls[first:], *urls[:first]]))
        self.key = key or SigningKey.generate()
        self.user = bytes(self.key.verify_key)
        self.subscribe = subscribe
        self.conn: RelayConnection | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.connects: list[tuple[float, str]] = []  # (monotonic time, url): authed (+subscribed)
        self.failed_connects: list[str] = []  # why each round over the list failed
        # --- as a recipient ---
        self.delivered: dict[bytes, set[int]] = {}
        self.pushes: Counter[bytes] = Counter()
        self.acked: set[bytes] = set()  # msg ids whose ack the relay confirmed
        self.after_ack: list[bytes] = []
        self.same_connection: list[bytes] = []  # pushed twice on one connection
        self._acks: set[asyncio.Task[None]] = set()
        # --- as a sender ---
        self.sent: list[Sent] = []
        self.refusals: Counter[str] = Counter()  # error codes answered to sends

    # --- connection ---------------------------------------------------------------------

    def _connection(self, url: str) -> RelayConnection:
        return RelayConnection(url, user=self.user, sign=lambda m: self.key.sign(m).signature,
                               timeout=5.0)

    async def start(self) -> None:
        """Connect (publishing a signed prekey, so others may send to it), and keep
        connected in the background."""
        self._task = asyncio.create_task(self._run())
        conn = await self.connection_after(None)
        pub = os.urandom(32)
        spk = SignedPrekey(key_id=1, pub=pub,
                           sig=self.key.sign(signed_prekey_message(pub)).signature)
        await conn.request(PublishPrekeys, user=self.user, spk=spk, otks=[])

    def reconnect(self) -> None:
        """Connect again after :meth:`close` (in the background: see ``conn``)."""
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    async def connection_after(self, old: RelayConnection | None) -> RelayConnection:
        """The current connection, once there is one other than ``old``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.conn is not None and self.conn is not old)
        assert self.conn is not None
        return self.conn

    async def _run(self) -> None:
        while True:
            try:
                conn, _ = await open_first(self.relays, self._connection)
                if self.subscribe:
                    await conn.request(Subscribe)
            except (RelayUnreachable, ConnectionLost, RelayError) as exc:
                # no node took us (all down, or the store out of reach): round again
                self.failed_connects.append(str(exc))
                await asyncio.sleep(RETRY)
                continue
            self.connects.append((time.monotonic(), self.relays.current))
            async with self._changed:
                self.conn = conn
                self._changed.notify_all()
            await self._read(conn)
            self.relays.lost()  # the next node first, as the client core does

    async def _read(self, conn: RelayConnection) -> None:
        seen: set[bytes] = set()
        unacked: list[tuple[int, bytes]] = []
        while (frame := await conn.next_push()) is not None:
            if not isinstance(frame, Deliver) or not frame.seq:
                continue
            self.delivered.setdefault(frame.msg, set()).add(frame.seq)
            self.pushes[frame.msg] += 1
            if frame.msg in self.acked:
                self.after_ack.append(frame.msg)
            if frame.msg in seen:
                self.same_connection.append(frame.msg)
            seen.add(frame.msg)
            unacked.append((frame.seq, frame.msg))
            if not conn.has_push():  # one ack for what arrived together
                task = asyncio.create_task(self._ack(conn, unacked))
                self._acks.add(task)  # (a task nobody holds may be collected)
                task.add_done_callback(self._acks.discard)
                unacked = []

    async def _ack(self, conn: RelayConnection, items: list[tuple[int, bytes]]) -> None:
        try:
            await conn.request(Ack, seqs=[seq for seq, _ in items])
        except (ConnectionLost, RelayError):
            return  # not confirmed: the relay may push them again (legal)
        self.acked.update(msg for _, msg in items)

    # --- sending ------------------------------------------------------------------------

    async def send(self, to: bytes, body: bytes) -> Sent:
        """Send until *stored*, as the client's outbox does: the same message id again
        after a lost connection (on the next node) or an ``unavailable`` answer."""
        msg = os.urandom(16)
        conn = await self.connection_after(None)
        while True:
            try:
                stored = await conn.request(Send, to=to, msg=msg, body=body)
            except ConnectionLost:
                conn = await self.connection_after(conn)
                continue
            except RelayError as exc:
                self.refusals[exc.code] += 1
                if exc.code != "unavailable":
                    raise
                await asyncio.sleep(RETRY)  # the store is out of reach: retry shortly
                if conn.closed.is_set():
                    conn = await self.connection_after(conn)
                continue
            assert isinstance(stored, Stored) and stored.msg == msg, stored
            sent = Sent(msg, to, stored.seq)
            self.sent.append(sent)
            return sent

    # --- what a fault test checks -------------------------------------------------------

    def missing(self, expected: Sequence[Sent]) -> list[Sent]:
        """The messages of ``expected`` for this client that never arrived."""
        return [s for s in expected if s.to == self.user and s.msg not in self.delivered]

    def reconnect_delay(self, since: float) -> float | None:
        """Seconds from ``since`` to the first connection made after it (None: none yet)."""
        later = [t for t, _ in self.connects if t > since]
        return later[0] - since if later else None


@dataclass
class Load:
    """Senders sending to recipients round robin, each at ``rate`` messages a second
    (one at a time: a send waits for its *stored*), until :meth:`stop`."""

    senders: list[FailoverClient]
    recipients: list[FailoverClient]
    rate: float = 20.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        for i, sender in enumerate(self.senders):
            self._tasks.append(asyncio.create_task(self._send(i, sender)))

    async def _send(self, i: int, sender: FailoverClient) -> None:
        targets = itertools.cycle(self.recipients[i % len(self.recipients):]
                                  + self.recipients[:i % len(self.recipients)])
        period = 1.0 / self.rate
        n = 0
        while not self._stop.is_set():
            started = time.monotonic()
            await sender.send(next(targets).user, b"load %d" % n)
            n += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, period - (time.monotonic() - started))):
                    await self._stop.wait()

    @property
    def sent(self) -> list[Sent]:
        return [s for sender in self.senders for s in sender.sent]

    async def stop(self) -> list[Sent]:
        """Stop sending (each sender finishes the send in hand); everything stored."""
        self._stop.set()
        await asyncio.gather(*self._tasks)
        return self.sent
