"""Conversation ids. A conversation is named by bytes the relay also uses: a peer's
32-byte user id (their Ed25519 identity key) or a group's 16-byte id. These helpers are
the one place that tells them apart (the length is the only difference on the wire)."""

from __future__ import annotations

from typing import NewType

__all__ = ["ConvId", "GROUP_ID_LEN", "USER_ID_LEN", "is_group", "is_user"]

ConvId = NewType("ConvId", bytes)  # a user id or a group id
GROUP_ID_LEN = 16
USER_ID_LEN = 32


def is_group(conv: bytes) -> bool:
    """A group's conversation (else a peer's)."""
    return len(conv) == GROUP_ID_LEN


def is_user(conv: bytes) -> bool:
    """A peer's conversation: their user id."""
    return len(conv) == USER_ID_LEN
