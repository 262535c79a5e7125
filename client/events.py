"""Events the client core emits for live user interfaces (the TUI, `inbox --follow`).

Plain frozen dataclasses: the core knows nothing of any UI toolkit. Listeners
registered with :meth:`Client.subscribe` are called in the event loop and must
not block.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cache import MessageRow

__all__ = ["MessageAdded", "StatusChanged", "TypingChanged", "PresenceChanged",
           "ConnectionChanged", "ConversationChanged", "MessageChanged", "StoryViewed",
           "StoryPosted", "Event",
           "ONLINE", "OFFLINE", "CONNECTING"]

CONNECTING, ONLINE, OFFLINE = "connecting", "online", "offline"


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A message entered the cache: received, or our own just queued (pending)."""

    message: MessageRow


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """Our messages to ``peer`` moved to ``status`` (cache.SENT, DELIVERED or READ)."""

    peer: bytes
    ids: list[bytes]
    status: int


@dataclass(frozen=True, slots=True)
class TypingChanged:
    peer: bytes  # the conversation: a peer's user id, or a group id
    active: bool
    sender: bytes | None = None  # in a group: who is typing


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    peer: bytes
    online: bool


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """The relay connection's state; ``retry_in`` seconds until the next attempt."""

    state: str  # CONNECTING | ONLINE | OFFLINE
    retry_in: float | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class MessageChanged:
    """A message was edited, deleted, pinned or reacted to."""

    conv: bytes
    id: bytes


@dataclass(frozen=True, slots=True)
class ConversationChanged:
    """Unread count, mute, pin or block of a conversation changed (not its messages)."""

    peer: bytes


@dataclass(frozen=True, slots=True)
class StoryViewed:
    """``viewer`` opened our story ``story`` (a view receipt arrived)."""

    story: bytes
    viewer: bytes


@dataclass(frozen=True, slots=True)
class StoryPosted:
    """Someone we follow posted ``story`` and we can open it (the relay's ``story_new``
    push, the story fetched and verified): it is in the cache."""

    story: bytes
    author: bytes
    handle: str | None


@dataclass(frozen=True, slots=True)
class DevicesChanged:
    """An account's signed device list changed, or one from the relay was refused
    (client/devices.py): a warning for the user, like a key change."""

    account: bytes
    text: str


Event = (MessageAdded | StatusChanged | TypingChanged | PresenceChanged | ConnectionChanged
         | ConversationChanged | MessageChanged | StoryViewed | StoryPosted | DevicesChanged)
