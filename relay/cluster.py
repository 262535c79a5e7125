"""This node's link to the other relay nodes: the hub's events out, theirs in.

With a bus configured (``bus = "nats://…"``), the hub hands every event that may
concern a connection on another node — a commit, an ephemeral push, a presence
change, a revoke, a ban — to :class:`Cluster`, which publishes it; events from the
other nodes are applied to this node's connections through the hub's local-only
``deliver_*`` methods (so nothing is published twice).

Presence is a table of which nodes each user is visibly online on: every node
announces its changes, a starting node asks for the others' rosters, and a node
not heard from for ``3 × heartbeat`` seconds is taken as gone (its users go
offline for the watchers here). Nothing durable crosses the bus: whenever traffic
may have been lost (``on_gap``), connections re-read their queues from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, TypeVar

import msgspec

from tenchat.common.frames import Deliver, GroupDeliver

from .bus import (
    MAX_EVENT,
    Bus,
    Disconnect,
    Ephemeral,
    Event,
    GroupBatch,
    GroupEntryEvent,
    GroupEphemeral,
    Heartbeat,
    MembersEvent,
    PrekeysLowEvent,
    PresenceEvent,
    Resync,
    Revoke,
    Roster,
    StoredBatch,
    StoryEvent,
    decode_event,
    encode_event,
)
from .storage import GroupEntry, MembersChanged

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["Cluster"]

log = logging.getLogger("tenchat.relay.cluster")

ROSTER_CHUNK: Final = 10_000  # users per roster message (32 bytes each)

T = TypeVar("T")


class Cluster:
    """The hub's peers: publishes what the hub forwards, applies what other nodes sent."""

    def __init__(self, hub: Hub, bus: Bus, *, node: str | None = None,
                 heartbeat: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.bus = bus
        self.node = node or os.urandom(8).hex()  # new at each start: a restart is a new node
        self.heartbeat = heartbeat
        self._monotonic = monotonic
        self._heard: dict[str, float] = {}  # other node -> when last heard from
        self._beat: asyncio.Task[None] | None = None
        self.received = 0  # events applied (tests, metrics)
        self.gaps = 0  # times this node re-read from the store after possible loss

    @property
    def nodes(self) -> frozenset[str]:
        """The other nodes heard from lately."""
        return frozenset(self._heard)

    async def start(self) -> None:
        await self.bus.open(self._received, self._gap)
        self.hub.peers = self
        self._publish(Heartbeat(hello=True))
        self._beat = asyncio.create_task(self._beat_loop(), name="cluster-heartbeat")

    async def close(self) -> None:
        self._publish(Heartbeat(bye=True))
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
        if self.hub.peers is self:
            self.hub.peers = None
        await self.bus.close()

    # --- out: called by the hub ------------------------------------------------------------

    def stored(self, items: list[tuple[bytes, Deliver, int, bool]]) -> None:
        self._publish_split(items, StoredBatch,
                            lambda big: Resync(users=[big[0]]))

    def group_events(self, events: Sequence[MembersChanged | GroupEntry]) -> None:
        out: list[GroupEntryEvent | MembersEvent] = [
            GroupEntryEvent(e.item, e.expires_at, e.prev) if isinstance(e, GroupEntry)
            else MembersEvent(e.group, e.roles, e.cursor)
            for e in events
        ]
        self._publish_split(out, GroupBatch, _resync_group)

    def ephemeral(self, recipient: bytes, item: Deliver) -> None:
        self._publish(Ephemeral(recipient, item))

    def group_ephemeral(self, item: GroupDeliver) -> None:
        self._publish(GroupEphemeral(item))

    def prekeys_low(self, user: bytes, otk_count: int) -> None:
        self._publish(PrekeysLowEvent(user, otk_count))

    def revoke(self, user: bytes, watcher: bytes) -> None:
        self._publish(Revoke(user, watcher))

    def story(self, author: bytes, story: bytes) -> None:
        self._publish(StoryEvent(author, story))

    def disconnect(self, user: bytes, reason: str) -> None:
        self._publish(Disconnect(user, reason))

    def presence(self, user: bytes, online: bool) -> None:
        self._publish(PresenceEvent(user, online))

    def _publish(self, event: Event) -> None:
        self.bus.publish(encode_event(self.node, event))

    def _publish_split(self, items: list[T], batch: Callable[[list[T]], Event],
                          too_big: Callable[[T], Event]) -> None:
        """One bus message for the batch, or halves of it while it is over MAX_EVENT; a
        single item too big for the bus is replaced by a request to re-read it."""
        if not items:
            return
        data = encode_event(self.node, batch(items))
        if len(data) <= MAX_EVENT:
            self.bus.publish(data)
        elif len(items) == 1:
            self._publish(too_big(items[0]))
        else:
            half = len(items) // 2
            self._publish_split(items[:half], batch, too_big)
            self._publish_split(items[half:], batch, too_big)

    # --- in: another node's event ----------------------------------------------------------

    def _received(self, data: bytes) -> None:
        try:
            envelope = decode_event(data)
        except msgspec.MsgspecError:
            log.warning("ignored a bus message that is not a relay event (%d bytes)", len(data))
            return
        node, event = envelope.node, envelope.event
        if node == self.node:
            return  # (no_echo: only if the bus echoes anyway)
        if isinstance(event, Heartbeat) and event.bye:
            if self._heard.pop(node, None) is not None:
                self.hub.node_gone(node)
            return
        new = node not in self._heard
        self._heard[node] = self._monotonic()
        if isinstance(event, Heartbeat) and event.hello:
            self._send_roster()
        elif new:
            # A node we had given up on (or never heard starting): what it told us is
            # unknown, and what we told it may be lost: exchange rosters again.
            self._publish(Heartbeat(hello=True))
        self.received += 1
        try:
            self._apply(node, event)
        except Exception:
            log.exception("applying a bus event failed")

    def _apply(self, node: str, event: Event) -> None:
        hub = self.hub
        match event:
            case StoredBatch(items=items):
                hub.deliver(items)
            case GroupBatch(events=events):
                hub.deliver_groups([
                    GroupEntry(e.item, e.expires_at, e.prev) if isinstance(e, GroupEntryEvent)
                    else MembersChanged(e.group, e.roles, e.cursor)
                    for e in events
                ])
            case Ephemeral(recipient=recipient, item=item):
                hub.deliver_ephemeral(recipient, item)
            case GroupEphemeral(item=gitem):
                hub.deliver_group_ephemeral(gitem)
            case PrekeysLowEvent(user=user, otk_count=count):
                hub.deliver_prekeys_low(user, count)
            case Revoke(user=user, watcher=watcher):
                hub.deliver_revoke(user, watcher)
            case StoryEvent(author=author, story=story):
                hub.deliver_story(author, story)
            case Disconnect(user=user, reason=reason):
                hub.deliver_disconnect(user, reason)
            case PresenceEvent(user=user, online=online):
                hub.remote_presence(node, user, online)
            case Roster(users=users):
                for user in users:
                    hub.remote_presence(node, user, True)
            case Resync(users=users, groups=groups):
                hub.resync(users, groups)
            case Heartbeat():
                pass

    def _send_roster(self) -> None:
        users = self.hub.visible_users()
        for start in range(0, len(users), ROSTER_CHUNK):
            self._publish(Roster(users[start:start + ROSTER_CHUNK]))

    def _gap(self, lost_own: bool) -> None:
        """The bus may have lost traffic: this node's connections re-read the store (and
        the other nodes' too, if what this node published was lost)."""
        self.gaps += 1
        self.hub.resync(None, None)
        self._publish(Heartbeat(hello=True))  # presence may be stale both ways
        if lost_own:
            self._publish(Resync())

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            self._publish(Heartbeat())
            deadline = self._monotonic() - 3 * self.heartbeat
            for node, heard in list(self._heard.items()):
                if heard < deadline:
                    del self._heard[node]
                    log.warning("relay node %s not heard from for %.0f s: its users are "
                                "offline; re-reading the queues here", node, 3 * self.heartbeat)
                    self.hub.node_gone(node)
                    # It may have died between a commit and its publish (or answered a
                    # retry from its dedupe, which publishes nothing): what it stored for
                    # users connected here is in the store only.
                    self.gaps += 1
                    self.hub.resync(None, None)


def _resync_group(event: GroupEntryEvent | MembersEvent) -> Event:
    group = event.item.group if isinstance(event, GroupEntryEvent) else event.group
    return Resync(users=[], groups=[group])
