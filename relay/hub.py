"""Who is online: identity → live sessions and subscriptions, and the pushes to them.

The hub is called synchronously (from the store's commit listener and from
handlers), so a push never reorders: each subscription gets its messages in
commit order and its pump sends them in that order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from tenchat.common.frames import Deliver, PrekeysLow, Presence

if TYPE_CHECKING:
    from .session import Session, Subscription

__all__ = ["Hub"]

T = TypeVar("T")


class Hub:
    def __init__(self) -> None:
        self._online: dict[bytes, set[Session]] = {}  # authenticated sessions
        self._subscribed: dict[bytes, set[Subscription]] = {}  # of those, the subscribed
        # Presence: a user is online while at least one connection of theirs is subscribed.
        self._watchers: dict[bytes, set[Session]] = {}  # watched user -> watching sessions

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

    def subscribe(self, sub: Subscription) -> None:
        subs = self._subscribed.setdefault(sub.user, set())
        subs.add(sub)
        if len(subs) == 1:
            self._presence(sub.user, True)

    def unsubscribe(self, sub: Subscription) -> None:
        was_online = sub.user in self._subscribed
        _discard(self._subscribed, sub.user, sub)
        if was_online and sub.user not in self._subscribed:
            self._presence(sub.user, False)

    # --- presence -----------------------------------------------------------------------

    def is_online(self, user: bytes) -> bool:
        return user in self._subscribed

    def watch(self, session: Session, users: list[bytes]) -> list[bytes]:
        """Replace ``session``'s watch list; returns the watched users online now."""
        for user in session.watching:
            _discard(self._watchers, user, session)
        session.watching = set(users)
        for user in session.watching:
            self._watchers.setdefault(user, set()).add(session)
        return [user for user in session.watching if user in self._subscribed]

    def _presence(self, user: bytes, online: bool) -> None:
        watchers = self._watchers.get(user)
        if watchers:
            frame = Presence(user=user, online=online)
            for session in watchers:
                session.push(frame)

    def sessions(self, user: bytes) -> frozenset[Session]:
        return frozenset(self._online.get(user, ()))

    def publish(self, stored: list[tuple[bytes, Deliver]]) -> None:
        """Commit listener: hand newly stored messages to their recipients' subscriptions."""
        subscribed = self._subscribed
        for recipient, item in stored:
            for sub in subscribed.get(recipient, ()):
                sub.offer(item)

    def publish_ephemeral(self, recipient: bytes, item: Deliver) -> int:
        """Push a message that is never stored; returns how many connections got it."""
        subs = self._subscribed.get(recipient, ())
        for sub in subs:
            sub.offer(item)
        return len(subs)

    def prekeys_low(self, user: bytes, otk_count: int) -> None:
        frame = PrekeysLow(otk_count=otk_count)
        for session in self._online.get(user, ()):
            session.push(frame)


def _discard(index: dict[bytes, set[T]], key: bytes, item: T) -> None:
    items = index.get(key)
    if items is not None:
        items.discard(item)
        if not items:
            del index[key]
