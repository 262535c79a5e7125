"""The client's own error types, in one module the core and the features share without
importing each other (each is a TenchatError: the CLI shows its message as one line)."""

from __future__ import annotations

from ..common.errors import TenchatError

__all__ = ["GroupError", "PeerError", "QueuedOffline"]


class PeerError(TenchatError):
    """The peer can't be used: unknown handle, blocked, or a broken binding."""


class GroupError(TenchatError):
    """A group operation that can't be done (not a member, not allowed, unknown group)."""


class QueuedOffline(TenchatError):
    """The message is safe in the outbox, but the relay could not be reached to send it."""
