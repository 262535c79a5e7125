"""One client connection's state, and its subscription (the ordered push of its queue).

A subscription registers in the hub *before* it reads the pending queue, buffers
live messages meanwhile, and sends only seqs above its cursor, so the switch from
the drained backlog to live pushes has no gap, no duplicate and no reorder. When
its live buffer overflows (a slow reader) it drops the buffer and drains from the
database again.

Groups work the same way, with a cursor per group: the subscription loads its
user's groups (and indexes itself under them in the hub) before draining each
group's log from its cursor, and sends only gseqs above that group's cursor.

With other relay nodes committing too (``hub.clustered``), seqs from another node can
arrive after higher ones committed here, so a cursor alone would drop them: the
subscription also remembers the seqs it sent lately (:class:`SentWindow`), sends
any seq it has not sent, and re-reads the whole queue instead of draining from its
cursor (``resync``: at a slow reader's overflow, or when the bus may have lost pushes).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from websockets.exceptions import ConnectionClosed

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Deliver, Error, GroupDeliver, Synced, encode

from .connection import Outgoing, RelayConnection
from .limits import Guards, TokenBucket, network_of

if TYPE_CHECKING:
    from .admin import AuditAggregator
    from .blobs import BlobStore
    from .config import Config
    from .hub import Hub
    from .metrics import Metrics
    from .storage import Store

__all__ = ["Session", "Subscription", "Later"]

_BURST = 256  # pushes written at once, at most (then the pump lets others run)
# Seqs (and gseqs) a clustered subscription remembers having sent: far more than can be
# in flight on the bus at once. Older ones, if pushed again, reach the client twice (it
# drops duplicates, as after any reconnect).
SENT_WINDOW = 8192

# Seconds a group entry waits for its predecessor (on its way from another node) before
# the subscription gives up on the bus and re-reads from the store.
GAP_WAIT = 0.5
# Seconds before a subscription that met the store out of reach reads it again (doubling).
_RETRY_MIN, _RETRY_MAX = 0.25, 4.0

log = logging.getLogger("tenchat.relay.session")


@dataclass(frozen=True, slots=True)
class Later:
    """An answer that comes when ``fut`` (a store write) resolves: ``build(result)``."""

    fut: asyncio.Future[Any]
    build: Callable[[Any], msgspec.Struct]


class Session:
    """A connection: its auth state, its unanswered requests and its subscription."""

    def __init__(
        self, ws: RelayConnection, config: Config, store: Store, hub: Hub,
        blobs: BlobStore | None = None, guards: Guards | None = None,
        audit: AuditAggregator | None = None, address: str = "?",
    ) -> None:
        self.ws = ws
        self.config = config
        self.store = store
        self.hub = hub
        self.blobs = blobs  # None: this relay stores no media
        self.challenge = os.urandom(32)
        self.version: int | None = None  # set by hello
        self.user: bytes | None = None  # set by auth
        # The account this connection acts for in groups: its own identity, or for a device
        # listed in an account's device list (docs/protocol.md §6E), that account.
        self.account: bytes | None = None  # set by auth
        self.subscription: Subscription | None = None
        self.watching: set[bytes] = set()  # users whose presence this connection watches
        self.watch_denied: set[bytes] = set()  # watched, but not contacts (hub.watch)
        # Bounds the requests a client may have in flight; the read loop waits for a slot.
        self.slots = asyncio.Semaphore(config.inflight_max)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._deferred = 0  # answers waiting for a commit
        self._outbox: deque[bytes] = deque()  # encoded deferred answers, in completion order
        self._flusher: asyncio.Task[Any] | None = None
        self._flush_scheduled = False
        self.metrics: Metrics | None = None  # set by the server
        # the origins auth may name (config.accepted_origins); set by the server
        self.origins: frozenset[str] = frozenset()
        # --- limits and roles (relay/limits.py, relay/admin.py) ---
        self.address = address  # the client's (limits.client_address), for the audit log
        self.network = network_of(address)  # what the per-address limits count by
        self.bucket = TokenBucket(config.rate_conn, config.burst_conn)
        self.opened = time.monotonic()
        self.stalled_since: float | None = None  # since when sends wait for a reader
        self.stall_low = 0  # the smallest send buffer seen since then (bytes)
        self.role = "user"  # "admin", "moderator" or "user", set by auth
        self.handle: str | None = None  # the handle the identity holds, set by auth
        self.auth_failures = 0  # failed auth / wallet_auth frames on this connection
        self.register_pow = 0  # proof-of-work bits asked of a register (set by hello)
        # Shared by the server's sessions (a session of its own gets its own, for tests).
        self.guards = guards if guards is not None else Guards(config)
        if audit is None:
            from .admin import AuditAggregator

            audit = AuditAggregator(store, config.audit_window)
        self.audit = audit

    @property
    def deferred_count(self) -> int:
        return self._deferred

    async def send(self, frame: msgspec.Struct) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(encode(frame))

    async def send_encoded(self, messages: list[bytes]) -> None:
        """Send encoded frames in order, in one socket write where the connection can."""
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send_frames(messages)

    def push(self, frame: msgspec.Struct) -> None:
        """Send without waiting (pushes from outside this connection's own flow)."""
        self.spawn(self.send(frame))

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def defer(self, rid: int, later: Later) -> None:
        """Send ``later``'s answer (or its error) when its future resolves; the request's
        slot is held until then. A callback, not a task per request: this is the hot path."""
        self._deferred += 1
        later.fut.add_done_callback(functools.partial(self._answer, rid, later.build))

    def _answer(
        self, rid: int, build: Callable[[Any], msgspec.Struct], fut: asyncio.Future[Any]
    ) -> None:
        self._deferred -= 1
        self.slots.release()
        try:
            frame = build(fut.result())
        except ProtocolError as exc:
            frame = Error(id=rid, error=str(exc.code), message=exc.message,
                          retry_after=exc.retry_after)
        except Exception:
            log.exception("deferred answer to request %d failed", rid)
            frame = Error(id=rid, error=ErrorCode.INTERNAL, message="internal error")
        if self.metrics is not None and isinstance(frame, Error):
            self.metrics.error(frame.error)
        self._outbox.append(encode(frame))
        if not self._flush_scheduled:
            # A callback, not a task: it runs before the commit's pushes (which the store
            # schedules a turn later), so a writer's answer never waits behind a fan-out.
            self._flush_scheduled = True
            fut.get_loop().call_soon(self._flush_soon)  # (get_running_loop: a getpid call)

    def _flush_soon(self) -> None:
        """Write the queued answers now if the connection takes them without waiting (one
        write for all of them); else leave them to an async flush, which waits."""
        self._flush_scheduled = False
        if self._flusher is not None and not self._flusher.done():
            return  # a flush is waiting for the socket; it takes these too, in order
        outbox = self._outbox
        while outbox and self.ws.queue_frame(outbox[0]):
            outbox.popleft()
        self.ws.flush()
        if outbox:
            self._flusher = self.spawn(self._flush())

    async def _flush(self) -> None:
        # Runs a loop turn after the first answer of a commit was queued: by then the
        # commit's other answers to this connection are queued too, and leave together.
        while self._outbox:
            batch = list(self._outbox)
            self._outbox.clear()
            await self.send_encoded(batch)

    async def drain_tasks(self, timeout: float) -> None:
        """Wait until every deferred answer has been sent (used at shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            pending = [t for t in self._tasks if not t.done()]
            if not pending and not self._deferred and not self._outbox:
                return
            if pending:
                await asyncio.wait(pending, timeout=deadline - loop.time())
            else:
                await asyncio.sleep(0.01)

    def close(self) -> None:
        """The connection is gone: stop pushing to it."""
        self.hub.leave(self)
        if self.subscription is not None:
            self.subscription.stop()


class Subscription:
    def __init__(self, session: Session) -> None:
        assert session.user is not None
        self.session = session
        self.user: bytes = session.user
        # Groups: the member it reads for, and (for a linked device) its own cursors.
        self.member: bytes = session.account or session.user
        self.device: bytes | None = None if self.member == self.user else self.user
        self.cursor = 0  # the highest seq sent on this connection
        # group -> the highest gseq sent on this connection (at first: the member's cursor).
        # Kept by the hub as membership changes commit.
        self.groups: dict[bytes, int] = {}
        self.membership_changes = 0  # bumped by the hub on each change to self.groups
        self._buffer: deque[tuple[Deliver | GroupDeliver, int, Outgoing | None, int]] = deque()
        self._limit = session.config.live_buffer
        self._need_drain = True
        # The pump waits for work with nothing buffered: an offer may then go straight to
        # the connection (in order: nothing is ahead of it), without waking the pump.
        self._idle = False
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        # With other nodes: what was sent lately, seqs and gseqs (see the module's doc).
        self._sent: SentWindow | None = None
        self._sent_groups: SentWindow | None = None
        if session.hub.clustered:
            self._sent, self._sent_groups = SentWindow(SENT_WINDOW), SentWindow(SENT_WINDOW)
        self._resync = False
        self._synced = False  # Synced was sent
        # group -> prev -> an entry waiting for its predecessor (clustered; _admit)
        self._parked: dict[bytes, dict[int, tuple[Deliver | GroupDeliver, int,
                                                  Outgoing | None, int]]] = {}

    def resync(self) -> None:
        """Re-read the whole queue and every group log from the member's stored cursor,
        sending only what was not sent (pushes may have been lost between nodes)."""
        self._buffer.clear()
        self._parked.clear()  # (the drain reads them)
        self._need_drain = self._resync = True
        self._wake.set()

    def start(self) -> None:
        # Register first: anything committed from now on reaches the buffer, and the
        # drain below sees everything committed before.
        self.session.hub.subscribe(self)
        self._pump = asyncio.create_task(self._run(), name="subscription-pump")

    def stop(self) -> None:
        self.session.hub.unsubscribe(self)
        if self._pump is not None:
            self._pump.cancel()

    def offer(
        self, item: Deliver | GroupDeliver, expires_at: int = 0, data: Outgoing | None = None,
        prev: int = -1,
    ) -> RelayConnection | None:
        """Hub → subscription, synchronous, in commit order (``data``: ``item`` already
        encoded, when the hub offers it to many; ``prev``: a group entry's predecessor,
        records.GroupEntry). Returns the connection when the frame was queued on it
        directly: the hub then flushes each such connection once."""
        if self._need_drain and (item.gseq if isinstance(item, GroupDeliver) else item.seq):
            return None  # the coming drain reads it from the database
        if self._idle and not self._buffer:
            ws = self.session.ws
            # (not writable: closing, or a slow reader: the pump sends it, and waits)
            if ws.writable():
                frame = self._admit(item, expires_at, data, prev)
                if frame is None or not ws.queue_frame(frame):
                    return None  # (queue_frame can't refuse right after writable())
                return ws
        if len(self._buffer) >= self._limit:
            # A slow reader: forget the buffer, fetch from the database instead.
            self._buffer.clear()
            self._parked.clear()
            self._need_drain = True
            # (with other nodes the buffer may hold seqs below the cursor, not yet sent)
            self._resync = self._sent is not None
        else:
            self._buffer.append((item, expires_at, data, prev))
        self._wake.set()
        return None

    def _admit(
        self, item: Deliver | GroupDeliver, expires_at: int, data: Outgoing | None,
        prev: int = -1,
    ) -> bytes | Outgoing | None:
        """Move the cursors past ``item``; its frame if it is to be sent, else None
        (already sent, expired, from a group this connection is no longer in, or parked
        until the group's entry before it arrives)."""
        if isinstance(item, GroupDeliver):
            cursor = self.groups.get(item.group)
            if item.gseq == 0:  # ephemeral: not part of the log's order
                return None if cursor is None else data or encode(item)
            if cursor is None:
                return None  # no longer a member
            if item.gseq <= cursor:
                if self._sent_groups is None or item.gseq in self._sent_groups:
                    return None  # already sent
                # (clustered: committed on another node before what was sent since)
            elif prev > cursor and self._sent_groups is not None:
                # The entry before it (committed first, on another node) is still on
                # its way: sending this one first would let the member's ack, a cursor,
                # pass it. Wait for it; it releases this one (below).
                self._park(item.group, (item, expires_at, data, prev))
                return None
            else:
                self.groups[item.group] = item.gseq
                waiting = self._parked.get(item.group) if self._parked else None
                if waiting and (after := waiting.pop(item.gseq, None)) is not None:
                    self._buffer.appendleft(after)  # next, before anything buffered
                    self._wake.set()
            if self._sent_groups is not None:
                self._sent_groups.add(item.gseq)
        elif item.seq:  # (seq 0: ephemeral, not part of the queue order)
            if item.seq <= self.cursor:
                if self._sent is None or item.seq in self._sent:
                    return None
            else:
                self.cursor = item.seq
            if self._sent is not None:
                self._sent.add(item.seq)
        if _expired(expires_at):
            return None
        return data or encode(item)

    def _park(self, group: bytes,
              entry: tuple[Deliver | GroupDeliver, int, Outgoing | None, int]) -> None:
        """Hold a group entry until its predecessor is sent; if that does not come over
        the bus within GAP_WAIT (lost), re-read the queues from the store instead."""
        self._parked.setdefault(group, {})[entry[3]] = entry
        asyncio.get_running_loop().call_later(GAP_WAIT, self._gap_expired, group, entry[3])

    def _gap_expired(self, group: bytes, prev: int) -> None:
        if prev in self._parked.get(group, {}):
            self.resync()

    async def _load_groups(self) -> None:
        """Read the user's groups and index this subscription under them, consistently
        with the membership changes the hub applies meanwhile (retry if one came)."""
        hub, store = self.session.hub, self.session.store
        while True:
            seen = self.membership_changes
            groups = await store.member_groups(self.member)
            if self.device is not None:  # a linked device reads from cursors of its own
                groups = await store.device_cursors(self.device, groups)
            if seen == self.membership_changes:
                hub.group_index(self, groups)
                return

    async def _run(self) -> None:
        retry = _RETRY_MIN
        self._synced = False
        while True:
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not _store_out_of_reach(exc):
                    log.exception("subscription pump failed")
                    return
            # The store is out of reach (PostgreSQL restarting): read the queue again
            # once it is back; what is committed meanwhile waits in the buffer.
            await asyncio.sleep(retry)
            retry = min(2 * retry, _RETRY_MAX)
            self._need_drain = True
            self._resync = self._sent is not None  # (re-read all: seqs out of order)

    async def _serve(self) -> None:
        session = self.session
        await self._load_groups()
        while True:
            if self._need_drain:
                self._need_drain = False
                if self._resync:
                    self._resync = False
                    self.cursor = 0
                    await self._load_groups()  # (the members' stored cursors)
                await self._drain()
                if not self._synced:
                    self._synced = True
                    await session.send(Synced(seq=self.cursor))
                continue
            out: list[bytes] = []  # what this turn has buffered leaves in one write
            while self._buffer and not self._need_drain and len(out) < _BURST:
                frame = self._admit(*self._buffer.popleft())
                if frame is not None:
                    out.append(frame.data if isinstance(frame, Outgoing) else frame)
            if out:
                await session.send_encoded(out)
            if not self._buffer and not self._need_drain:
                self._wake.clear()
                self._idle = True
                try:
                    await self._wake.wait()
                finally:
                    self._idle = False

    async def _drain(self) -> None:
        """The 1:1 queue, then each group's log from its cursor (gseq ascending)."""
        self._parked.clear()  # (committed before their successors: read below)
        page = self.session.config.page_size
        store = self.session.store
        after = self.cursor
        sent = self._sent
        while True:
            items = await store.pending(self.user, after, page)
            if items:
                after = items[-1].seq
                self.cursor = max(self.cursor, after)
                fresh = items if sent is None else [i for i in items if sent.fresh(i.seq)]
                await self.session.send_encoded([encode(item) for item in fresh])
            if len(items) < page:
                break
        sent_groups = self._sent_groups
        for group in list(self.groups):
            gafter = self.groups[group]
            while group in self.groups:
                gitems = await store.group_pending(group, self.member, gafter, page)
                if group not in self.groups:
                    break  # removed meanwhile; these entries predate the removal
                if gitems:
                    gafter = gitems[-1].gseq
                cursor = self.groups[group]
                if sent_groups is None:
                    gfresh = [gitem for gitem in gitems if gitem.gseq > cursor]
                else:
                    gfresh = [gitem for gitem in gitems if sent_groups.fresh(gitem.gseq)]
                if gfresh:
                    self.groups[group] = max(cursor, gfresh[-1].gseq)
                    await self.session.send_encoded([encode(gitem) for gitem in gfresh])
                if len(gitems) < page:
                    break


class SentWindow:
    """The last ``size`` seqs sent, for membership tests."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._order: deque[int] = deque()
        self._members: set[int] = set()

    def __contains__(self, seq: int) -> bool:
        return seq in self._members

    def add(self, seq: int) -> None:
        if seq in self._members:
            return
        self._order.append(seq)
        self._members.add(seq)
        if len(self._order) > self._size:
            self._members.discard(self._order.popleft())

    def fresh(self, seq: int) -> bool:
        """Whether ``seq`` was not sent yet; remembers it as sent."""
        if seq in self._members:
            return False
        self.add(seq)
        return True


def _store_out_of_reach(exc: Exception) -> bool:
    from .storage import storage_error

    refused = exc if isinstance(exc, ProtocolError) else storage_error(exc)
    return refused is not None and refused.code == ErrorCode.UNAVAILABLE


def _expired(expires_at: int) -> bool:
    return bool(expires_at) and expires_at <= time.time_ns() // 1_000_000


def check_authenticated(session: Session) -> bytes:
    if session.user is None:
        raise ProtocolError(ErrorCode.UNAUTHENTICATED, "authenticate first (hello, auth)")
    return session.user


def acting_account(session: Session) -> bytes:
    """Who the connection acts for in groups and signed records: its account (a device
    listed in an account's device list acts for that account, docs/protocol.md §6E)."""
    user = check_authenticated(session)
    return session.account or user
