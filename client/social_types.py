"""What the social layer hands out: verified views of profiles, follows, posts and
comments, and its error."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..common import social as s
from ..common.crypto.media import MediaRef
from ..common.errors import TenchatError

__all__ = ["SocialError", "ProfileView", "FollowView", "PostView", "CommentView", "now_ms"]


class SocialError(TenchatError):
    """A profile or follow could not be read or changed; the message says why."""


@dataclass(frozen=True, slots=True)
class ProfileView:
    user: bytes
    handle: str | None
    profile: s.Profile | None  # None: the user has published no profile


@dataclass(frozen=True, slots=True)
class FollowView:
    """One verified entry of a follower / following / request list."""

    user: bytes  # the other side: the follower, or the followed account
    handle: str | None
    at: int  # the follower's clock when they asked
    approved: bool  # carries the owner's signed approval
    approved_at: int = 0  # the owner's clock in that approval (0: none)


@dataclass(frozen=True, slots=True)
class PostView:
    """One verified post. ``text`` is None for a followers-only post we hold no key for."""

    id: bytes
    author: bytes
    handle: str | None
    created_at: int
    audience: str  # "public" or "followers"
    text: str | None
    images: list[MediaRef] = field(default_factory=list)
    key_id: int | None = None  # a followers-only post's audience key id
    comments: int = 0  # as counted by the relay
    reactions: dict[str, int] = field(default_factory=dict)  # emoji -> count (the relay's)


@dataclass(frozen=True, slots=True)
class CommentView:
    """One verified comment. ``text`` is None for a sealed one we hold no key for."""

    id: bytes
    post_id: bytes
    author: bytes
    handle: str | None
    created_at: int
    text: str | None


def now_ms() -> int:
    return time.time_ns() // 1_000_000
