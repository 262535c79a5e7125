"""Who is online: identity → live sessions and subscriptions, and the pushes to them.

The hub is called synchronously (from the store's commit listeners and from
handlers), so a push never reorders: each subscription gets its messages in
commit order and its pump sends them in that order.

Groups are fanned out on read: the hub keeps, per group, only the subscriptions
of its members that are online (``_group_subs``), so a commit to a 200,000-member
group costs one dictionary look-up plus one offer per online member. The index is
filled when a subscription loads its user's groups, and kept up to date by the
membership changes the store reports after each commit.

With several relay nodes (a bus configured), ``peers`` is this node's
:class:`~.cluster.Cluster`: every public push method here also forwards the event to
the other nodes, which apply it with the local-only ``deliver_*`` methods; presence
then counts the users online on other nodes too (``_remote``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from tenchat.common.frames import (
    Deliver,
    GroupDeliver,
    PrekeysLow,
    Presence,
    StoryNew,
    encode,
)

from .connection import Outgoing
from .storage import GroupEntry, MembersChanged

if TYPE_CHECKING:
    from .cluster import Cluster
    from .connection import RelayConnection
    from .session import Session, Subscription

__all__ = ["Hub"]

T = TypeVar("T")

log = logging.getLogger("tenchat.relay.hub")


class Hub:
    def __init__(self) -> None:
        self._online: dict[bytes, set[Session]] = {}  # authenticated sessions
        self._subscribed: dict[bytes, set[Subscription]] = {}  # of those, the subscribed
        # account -> the subscriptions of its linked devices (not keyed by the account key)
        self._devices: dict[bytes, set[Subscription]] = {}
        # Presence: a user is online while at least one connection of theirs is subscribed.
        self._watchers: dict[bytes, set[Session]] = {}  # watched user -> watching sessions
        # Watched users who are not (yet) contacts of the watcher: watched user -> sessions.
        # A message from the user to the watcher makes them one (see publish).
        self._denied: dict[bytes, set[Session]] = {}
        # Users who hide their presence (privacy.hide_presence), while they have sessions.
        self._hidden: set[bytes] = set()
        # group -> the subscriptions of its online members
        self._group_subs: dict[bytes, set[Subscription]] = {}
        # --- with other relay nodes (relay/cluster.py) ---
        self.peers: Cluster | None = None
        # user -> the other nodes on which the user is visibly online
        self._remote: dict[bytes, set[str]] = {}
        # A user's approved followers (the store's; set by the server): who gets story_new.
        self.followers: Callable[[bytes], Awaitable[list[bytes]]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # story_new fan-outs under way

    @property
    def clustered(self) -> bool:
        """Other nodes may commit for this node's users: their seqs can arrive out of
        order (Subscription keeps what it sent instead of trusting its cursor)."""
        return self.peers is not None

    def join(self, session: Session) -> None:
        assert session.user is not None
        self._online.setdefault(session.user, set()).add(session)

    def leave(self, session: Session) -> None:
        self.watch(session, [])
        if session.user is None:
            return
        _discard(self._online, session.user, session)
        if session.subscription is not None:
            self.unsubscribe(session.subscription)
        if session.user not in self._online:
            self._hidden.discard(session.user)  # loaded again at the next auth

    def subscribe(self, sub: Subscription) -> None:
        if sub.device is not None:  # a linked device: its account's group changes reach it
            self._devices.setdefault(sub.member, set()).add(sub)
        subs = self._subscribed.setdefault(sub.user, set())
        subs.add(sub)
        if len(subs) == 1:
            self._presence(sub.user, True)

    def unsubscribe(self, sub: Subscription) -> None:
        was_online = sub.user in self._subscribed
        _discard(self._subscribed, sub.user, sub)
        if sub.device is not None:
            _discard(self._devices, sub.member, sub)
        for group in sub.groups:
            _discard(self._group_subs, group, sub)
        if was_online and sub.user not in self._subscribed:
            self._presence(sub.user, False)

    # --- presence -----------------------------------------------------------------------

    def is_online(self, user: bytes) -> bool:
        """Online as watchers see it: subscribed here and not hiding, or so on another
        node."""
        return self._visible_here(user) or user in self._remote

    def visible_users(self) -> list[bytes]:
        """The users visibly online on this node (the roster other nodes ask for)."""
        return [user for user in self._subscribed if user not in self._hidden]

    def remote_presence(self, node: str, user: bytes, online: bool) -> None:
        """Another node says ``user`` is (no longer) visibly online there."""
        before = self.is_online(user)
        if online:
            self._remote.setdefault(user, set()).add(node)
        else:
            _discard(self._remote, user, node)
        if self.is_online(user) != before:
            self._notify_presence(user, not before)

    def node_gone(self, node: str) -> None:
        """Another node stopped answering: its users are offline, as far as it counted."""
        for user in [user for user, nodes in self._remote.items() if node in nodes]:
            self.remote_presence(node, user, False)

    def set_hidden(self, user: bytes, hidden: bool) -> None:
        """Apply ``privacy.hide_presence``: hiding looks to watchers like going offline."""
        if hidden and user not in self._online:
            return  # nobody to hide; the setting is read from the store at the next auth
        before = self._visible_here(user)
        if hidden:
            self._hidden.add(user)
        else:
            self._hidden.discard(user)
        after = self._visible_here(user)
        if before != after:
            self._presence(user, after, force=True)

    def _visible_here(self, user: bytes) -> bool:
        return user in self._subscribed and user not in self._hidden

    def watch(self, session: Session, users: list[bytes],
              denied: list[bytes] | tuple[()] = ()) -> list[bytes]:
        """Replace ``session``'s watch list: ``users`` may see each other's presence,
        ``denied`` are not contacts of the session's user (always offline to it, until
        they send it a message); returns the watched users online now."""
        for user in session.watching:
            _discard(self._watchers, user, session)
        for user in session.watch_denied:
            _discard(self._denied, user, session)
        session.watching = set(users)
        session.watch_denied = set(denied) - session.watching
        for user in session.watching:
            self._watchers.setdefault(user, set()).add(session)
        for user in session.watch_denied:
            self._denied.setdefault(user, set()).add(session)
        return [user for user in session.watching if self.is_online(user)]

    def _grant(self, user: bytes, watcher: bytes) -> None:
        """``user`` sent ``watcher`` a message: the watcher's sessions that wait for
        ``user``'s presence see it from now on."""
        for session in list(self._denied.get(user, ())):
            if session.user != watcher:
                continue
            _discard(self._denied, user, session)
            session.watch_denied.discard(user)
            session.watching.add(user)
            self._watchers.setdefault(user, set()).add(session)
            if self.is_online(user):
                session.push(Presence(user=user, online=True))

    def revoke(self, user: bytes, watcher: bytes) -> None:
        """``user`` blocked ``watcher``: no more of ``user``'s presence for it."""
        if self.peers is not None:
            self.peers.revoke(user, watcher)
        self.deliver_revoke(user, watcher)

    def deliver_revoke(self, user: bytes, watcher: bytes) -> None:
        for session in self._online.get(watcher, ()):
            if user not in session.watching:
                continue
            online = self.is_online(user)
            session.watching.discard(user)
            _discard(self._watchers, user, session)
            session.watch_denied.add(user)
            self._denied.setdefault(user, set()).add(session)
            if online:
                session.push(Presence(user=user, online=False))

    def _presence(self, user: bytes, online: bool, *, force: bool = False) -> None:
        """``user`` became visibly online on this node, or stopped being."""
        if user in self._hidden and not force:
            return  # a hidden user never comes online, so never goes offline either
        if self.peers is not None:
            self.peers.presence(user, online)
            if user in self._remote:
                return  # online on another node all along: nothing changes for watchers
        self._notify_presence(user, online)

    def _notify_presence(self, user: bytes, online: bool) -> None:
        watchers = self._watchers.get(user)
        if watchers:
            frame = Presence(user=user, online=online)
            for session in watchers:
                session.push(frame)

    def sessions(self, user: bytes) -> frozenset[Session]:
        return frozenset(self._online.get(user, ()))

    def publish(self, stored: list[tuple[bytes, Deliver, int, bool]]) -> None:
        """Commit listener: hand newly stored messages to their recipients' subscriptions
        (here and on the other nodes)."""
        if self.peers is not None:
            self.peers.stored(stored)
        self.deliver(stored)

    def deliver(self, stored: list[tuple[bytes, Deliver, int, bool]]) -> None:
        subscribed = self._subscribed
        denied = self._denied
        now = 0
        written: dict[RelayConnection, None] = {}  # connections with frames queued
        for recipient, item, expires_at, conv in stored:
            if conv and denied and item.sender in denied:
                self._grant(item.sender, recipient)  # now a contact of the recipient
            subs = subscribed.get(recipient)
            if not subs:
                continue
            if expires_at:
                now = now or _now_ms()
                if expires_at <= now:
                    continue  # expired before it could be pushed
            for sub in subs:
                if (ws := sub.offer(item, expires_at)) is not None:
                    written[ws] = None
        for ws in written:
            ws.flush()  # one write per connection for the whole commit

    # --- groups -------------------------------------------------------------------------

    def group_index(self, sub: Subscription, groups: dict[bytes, int]) -> None:
        """A subscription loaded its user's groups (with cursors): index it under them."""
        for group in sub.groups.keys() - groups.keys():
            _discard(self._group_subs, group, sub)
        sub.groups = dict(groups)
        for group in groups:
            self._group_subs.setdefault(group, set()).add(sub)

    def publish_groups(self, events: list[MembersChanged | GroupEntry]) -> None:
        """Group commit listener, in commit order: membership changes keep the index
        current (before the entry that made them), entries go to online members (here
        and on the other nodes)."""
        if self.peers is not None:
            self.peers.group_events(events)
        self.deliver_groups(events)

    def deliver_groups(self, events: list[MembersChanged | GroupEntry]) -> None:
        now = 0
        written: dict[RelayConnection, None] = {}  # connections with frames queued
        for event in events:
            if isinstance(event, GroupEntry):
                subs = self._group_subs.get(event.item.group)
                if not subs:
                    continue
                if event.expires_at:
                    now = now or _now_ms()
                    if event.expires_at <= now:
                        continue
                data = Outgoing(encode(event.item))  # once, not once per member
                for sub in subs:
                    if (ws := sub.offer(event.item, event.expires_at, data, event.prev)
                            ) is not None:
                        written[ws] = None
                continue
            group = event.group
            for user, role in event.roles.items():
                for sub in (*self._subscribed.get(user, ()), *self._devices.get(user, ())):
                    sub.membership_changes += 1
                    if role is None:
                        sub.groups.pop(group, None)
                        _discard(self._group_subs, group, sub)
                    elif group not in sub.groups:
                        sub.groups[group] = event.cursor
                        self._group_subs.setdefault(group, set()).add(sub)
        for ws in written:
            ws.flush()

    def group_online(self, group: bytes) -> int:
        """How many subscriptions of online members a group has (tests, benchmarks)."""
        return len(self._group_subs.get(group, ()))

    def publish_group_ephemeral(self, item: GroupDeliver) -> int:
        """Push a group message that is never stored (``gseq`` 0) to the online members
        other than its sender; returns how many subscriptions on this node got it."""
        if self.peers is not None:
            self.peers.group_ephemeral(item)
        return self.deliver_group_ephemeral(item)

    def deliver_group_ephemeral(self, item: GroupDeliver) -> int:
        count = 0
        data = Outgoing(encode(item))
        written: dict[RelayConnection, None] = {}
        for sub in self._group_subs.get(item.group, ()):
            if sub.member != item.sender:
                if (ws := sub.offer(item, 0, data)) is not None:
                    written[ws] = None
                count += 1
        for ws in written:
            ws.flush()
        return count

    def publish_ephemeral(self, recipient: bytes, item: Deliver) -> int:
        """Push a message that is never stored; returns how many connections on this node
        got it."""
        if self.peers is not None:
            self.peers.ephemeral(recipient, item)
        return self.deliver_ephemeral(recipient, item)

    def deliver_ephemeral(self, recipient: bytes, item: Deliver) -> int:
        subs = self._subscribed.get(recipient, ())
        for sub in subs:
            if (ws := sub.offer(item)) is not None:
                ws.flush()
        return len(subs)

    def prekeys_low(self, user: bytes, otk_count: int) -> None:
        if self.peers is not None:
            self.peers.prekeys_low(user, otk_count)
        self.deliver_prekeys_low(user, otk_count)

    def deliver_prekeys_low(self, user: bytes, otk_count: int) -> None:
        frame = PrekeysLow(otk_count=otk_count)
        for session in self._online.get(user, ()):
            session.push(frame)

    # --- stories ------------------------------------------------------------------------

    def story_posted(self, author: bytes, story: bytes) -> None:
        """``author`` stored a new story: tell its followers online (here and on the
        other nodes) with a ``story_new`` push."""
        if self.peers is not None:
            self.peers.story(author, story)
        self.deliver_story(author, story)

    def deliver_story(self, author: bytes, story: bytes) -> None:
        # Only when someone else is subscribed here: a follower read per story and node.
        others = len(self._subscribed) - (author in self._subscribed) + len(self._devices)
        if self.followers is None or not others:
            return
        task = asyncio.ensure_future(self._push_story(self.followers, author, story))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push_story(self, followers: Callable[[bytes], Awaitable[list[bytes]]],
                          author: bytes, story: bytes) -> None:
        try:
            users = await followers(author)
        except Exception:  # the store is closing or failing: the client's slow poll covers it
            log.warning("story_new not pushed: the followers could not be read", exc_info=True)
            return
        frame = StoryNew(author=author, story=story)
        for user in users:  # accounts: their own connections and their linked devices'
            for sub in (*self._subscribed.get(user, ()), *self._devices.get(user, ())):
                sub.session.push(frame)

    # --- forced disconnects and re-reads -------------------------------------------------

    def disconnect(self, user: bytes, reason: str) -> None:
        """Close every connection of ``user``, on every node (a ban)."""
        if self.peers is not None:
            self.peers.disconnect(user, reason)
        self.deliver_disconnect(user, reason)

    def deliver_disconnect(self, user: bytes, reason: str) -> None:
        """Close ``user``'s connections on this node (policy violation), without waiting."""
        for session in self._online.get(user, ()):
            session.spawn(session.ws.close(1008, reason))

    def resync(self, users: list[bytes] | None, groups: list[bytes] | None) -> None:
        """Subscriptions of ``users`` and of members of ``groups`` (both None: every
        subscription here) re-read their queues from the store: pushes may have been lost
        on the bus."""
        if users is None and groups is None:
            subs: set[Subscription] = set().union(*self._subscribed.values())
        else:
            subs = set()
            for user in users or ():
                subs.update(self._subscribed.get(user, ()))
            for group in groups or ():
                subs.update(self._group_subs.get(group, ()))
        for sub in subs:
            sub.resync()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _discard(index: dict[bytes, set[T]], key: bytes, item: T) -> None:
    items = index.get(key)
    if items is not None:
        items.discard(item)
        if not items:
            del index[key]
