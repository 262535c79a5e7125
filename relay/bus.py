"""The bus between relay nodes: what one node tells the others, and how it is carried.

Several relay nodes share one store (PostgreSQL); a client is connected to one of
them. What a node commits or receives for a user connected elsewhere — a stored
message, a group log entry, a typing indicator, a presence change, a ban — is
published on the bus, and every other node applies it to its own connections
(``relay/cluster.py``). The bus is *ephemeral*: durable state lives in the store
only, so a node that may have missed traffic (``on_gap``: the bus connection
dropped, or this node read too slowly) re-reads its users' queues from the store.

:class:`Bus` is the interface (bytes on one channel, fire and forget);
:class:`NatsBus` carries it on core NATS (docs/design.md, "Scale-out", says why
NATS and not Redis pub/sub). No bus is the default: one node needs none.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

import msgspec

from tenchat.common.frames import Deliver, GroupDeliver

__all__ = [
    "Bus", "NatsBus", "open_bus", "bus_url",
    "Envelope", "Event", "StoredBatch", "GroupBatch", "GroupEntryEvent", "MembersEvent",
    "Ephemeral", "GroupEphemeral", "PrekeysLowEvent", "Revoke", "StoryEvent",
    "Disconnect",
    "PresenceEvent", "Heartbeat", "Roster", "Resync", "encode_event", "decode_event",
]

log = logging.getLogger("tenchat.relay.bus")

SUBJECT: Final = "tenchat.relay.events"  # one channel: every node hears every event


def subject_for(name: str) -> str:
    """The subject of the relay called ``name`` (the nodes of one relay share its name):
    relays with different names can share one NATS server without hearing each other."""
    import hashlib

    return f"tenchat.relay.{hashlib.sha256(name.encode()).hexdigest()[:16]}.events"
MAX_EVENT: Final = 512 * 1024  # bytes per bus message (core NATS refuses over 1 MiB)
CONNECT_TIMEOUT: Final = 5.0  # seconds for the first connection, at start


# --- the events (msgpack, tagged; one Envelope per bus message) ----------------------------


class _Event(msgspec.Struct, tag_field="e", array_like=True):
    pass


class StoredBatch(_Event, tag="stored"):
    """Messages a node committed: (recipient, message, expires_at, conv) as its store's
    commit listener got them (relay/storage/records.py ``CommitListener``)."""

    items: list[tuple[bytes, Deliver, int, bool]]


class GroupEntryEvent(_Event, tag="gentry"):
    item: GroupDeliver
    expires_at: int
    prev: int = -1  # the group's entry before it (records.GroupEntry)


class MembersEvent(_Event, tag="members"):
    group: bytes
    roles: dict[bytes, str | None]
    cursor: int


class GroupBatch(_Event, tag="groups"):
    """A node's group commit events, in commit order."""

    events: list[GroupEntryEvent | MembersEvent]


class Ephemeral(_Event, tag="eph"):
    """A 1:1 message never stored (typing and the like): pushed to live connections."""

    recipient: bytes
    item: Deliver


class GroupEphemeral(_Event, tag="geph"):
    item: GroupDeliver


class PrekeysLowEvent(_Event, tag="prekeys_low"):
    user: bytes
    otk_count: int


class StoryEvent(_Event, tag="story"):
    """``author`` stored the story ``story``: its followers online get ``story_new``."""

    author: bytes
    story: bytes


class Revoke(_Event, tag="revoke"):
    """``user`` blocked ``watcher``: the watcher's connections lose ``user``'s presence."""

    user: bytes
    watcher: bytes


class Disconnect(_Event, tag="disconnect"):
    """Close every connection of ``user`` (a ban)."""

    user: bytes
    reason: str


class PresenceEvent(_Event, tag="presence"):
    """``user`` became visible online (or stopped being) on the sending node."""

    user: bytes
    online: bool


class Heartbeat(_Event, tag="beat"):
    """The sending node is alive; a node not heard from for a while is taken as gone
    (its users offline). ``hello``: it has just started and wants the others' rosters;
    ``bye``: it is stopping (its users are offline now)."""

    hello: bool = False
    bye: bool = False


class Roster(_Event, tag="roster"):
    """Some of the users visible online on the sending node (answer to a hello)."""

    users: list[bytes]


class Resync(_Event, tag="resync"):
    """Connections of these users and of the members of these groups (both None: all
    connections) re-read their queues from the store: the sender lost events (it could
    not publish for a while), or one was too big for the bus."""

    users: list[bytes] | None = None
    groups: list[bytes] | None = None


Event = (StoredBatch | GroupBatch | Ephemeral | GroupEphemeral | PrekeysLowEvent | Revoke
         | StoryEvent | Disconnect | PresenceEvent | Heartbeat | Roster | Resync)


class Envelope(msgspec.Struct, array_like=True):
    node: str  # the sender's node id (relay/cluster.py)
    event: Event


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Envelope)


def encode_event(node: str, event: Event) -> bytes:
    return _encoder.encode(Envelope(node, event))


def decode_event(data: bytes) -> Envelope:
    """Raises msgspec.ValidationError / DecodeError on a message that is not an event."""
    return _decoder.decode(data)


# --- the transport -------------------------------------------------------------------------

Receiver = Callable[[bytes], None]  # one bus message, from another node
# Traffic may have been lost: re-read from the store; True when this node's own messages
# were lost too (the other nodes must re-read as well).
GapListener = Callable[[bool], None]


class Bus(abc.ABC):
    """Bytes to every other node, fire and forget, in publish order per sender."""

    @abc.abstractmethod
    async def open(self, on_message: Receiver, on_gap: GapListener) -> None:
        """Connect and start receiving (never the node's own messages)."""

    @abc.abstractmethod
    def publish(self, data: bytes) -> None:
        """Queue ``data`` for the other nodes; never blocks, never raises."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Send what is queued (briefly), then disconnect."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """Whether messages published now reach the other nodes (``/healthz``)."""


def bus_url(value: str) -> str:
    """Check a bus URL (config ``bus``): ``nats://HOST[:PORT]``, or ``tls://`` for NATS
    over TLS."""
    parts = urlsplit(value)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ValueError("expected nats://HOST[:PORT]")
    return value


def shown(url: str) -> str:
    """``url`` as logs and errors show it: without the user and password in it."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=f"***@{netloc}").geturl()


def open_bus(url: str, name: str) -> Bus:
    """The bus for a ``bus`` setting (checked by :func:`bus_url`) of the relay ``name``."""
    return NatsBus(url, subject=subject_for(name))


class NatsBus(Bus):
    """Core NATS pub/sub on one subject (no JetStream: nothing on the bus is durable).

    nats-py reconnects by itself (forever, every 0.25 s); while it is away it keeps
    what is published in its pending buffer and sends it on reconnect. Whatever may
    still have been lost — the server restarted and dropped its in-flight messages,
    the buffer overflowed, this node fell behind (a slow consumer) — is reported as a
    gap, after which this node's connections re-read their queues from the store.
    """

    def __init__(self, url: str, *, subject: str = SUBJECT) -> None:
        self.url = url
        self.shown = shown(url)  # for logs: the credentials left out
        self.subject = subject
        self._nc: object | None = None  # nats.aio.client.Client (imported lazily)
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._on_gap: GapListener = lambda lost_own: None
        self._dropped = 0  # messages that could not be published since the last gap
        self._up = False

    @property
    def connected(self) -> bool:
        return self._up

    async def open(self, on_message: Receiver, on_gap: GapListener) -> None:
        import nats
        from nats.aio.msg import Msg

        self._on_gap = on_gap

        async def received(msg: Msg) -> None:
            on_message(msg.data)

        async def disconnected() -> None:
            if self._up:
                log.warning("bus %s: disconnected, reconnecting", self.shown)
            self._up = False

        async def reconnected() -> None:
            log.info("bus %s: reconnected", self.shown)
            self._up = True
            self._gap()

        async def error(exc: Exception) -> None:
            from nats.errors import SlowConsumerError

            if isinstance(exc, SlowConsumerError):
                log.warning("bus %s: this node fell behind; re-reading from the store", self.shown)
                self._gap()
            else:
                log.info("bus %s: %s", self.shown, exc or type(exc).__name__)

        try:
            # (nats-py retries a first connection forever too, with reconnects on: bound it)
            nc = await asyncio.wait_for(nats.connect(
                self.url, name="tenchat-relay", no_echo=True, allow_reconnect=True,
                max_reconnect_attempts=-1, reconnect_time_wait=0.25, connect_timeout=2,
                ping_interval=5, max_outstanding_pings=2,
                disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error,
            ), CONNECT_TIMEOUT)
        except TimeoutError:
            raise OSError(f"cannot reach the bus at {self.shown} (no answer within "
                          f"{CONNECT_TIMEOUT:g} s)") from None
        except Exception as exc:  # nats-py raises its own errors, or OSError
            raise OSError(f"cannot reach the bus at {self.shown}: "
                          f"{exc or type(exc).__name__}") from None
        self._nc = nc
        # A node that falls this far behind has lost the rest; it re-reads the store.
        await nc.subscribe(self.subject, cb=received, pending_msgs_limit=100_000,
                           pending_bytes_limit=256 * 1024 * 1024)
        await nc.flush()
        self._up = True
        self._pump = asyncio.create_task(self._run(), name="bus-publish")

    def publish(self, data: bytes) -> None:
        self._queue.append(data)
        self._wake.set()

    def _gap(self) -> None:
        lost_own, self._dropped = self._dropped > 0, 0
        self._on_gap(lost_own)

    async def _run(self) -> None:
        from nats.aio.client import Client

        nc = self._nc
        assert isinstance(nc, Client)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                data = self._queue.popleft()
                try:
                    await nc.publish(self.subject, data)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # over the pending buffer while away, or closed
                    self._dropped += 1
                    if self._dropped == 1:
                        log.warning("bus %s: could not publish (%s); peers will re-read",
                                    self.shown, exc or type(exc).__name__)

    async def close(self) -> None:
        from nats.aio.client import Client

        nc = self._nc
        self._nc = None
        self._up = False  # (a disconnect now is ours)
        if self._pump is not None:
            # what is queued goes out first (the pump empties the queue between awaits)
            for _ in range(100):
                if not self._queue:
                    break
                await asyncio.sleep(0.01)
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if isinstance(nc, Client):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), 2)
            with contextlib.suppress(Exception):
                await nc.close()
        self._up = False
