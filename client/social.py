"""The client side of the social layer: profiles and follows.

Every record the relay hands back is verified here (signature, and that it is
about the user asked for) before anything is shown: the relay is untrusted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ..common import frames as f
from ..common import social as s
from ..common.errors import ProtocolError, TenchatError
from . import media
from .connection import RelayError

if TYPE_CHECKING:
    from .service import Client

__all__ = ["SocialService", "SocialError", "ProfileView", "FollowView"]

log = logging.getLogger("tenchat.client.social")

LIST_PAGE = 500  # entries per follow_list request
LIST_MAX = 10_000  # entries read for one listing, at most


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


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


class SocialService:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def _user(self, peer: str | None) -> bytes:
        return self.client.user if peer is None else (await self.client.resolve(peer)).user

    async def _handle(self, user: bytes) -> str | None:
        if user == self.client.user:
            return self.client.handle
        if await self.client.cache.contact(user) is None:
            async with self.client._crypto_lock:
                await self.client._name_sender(user)
                await self.client.cache.commit()
        contact = await self.client.cache.contact(user)
        return contact.handle if contact is not None else None

    # --- profiles -----------------------------------------------------------------------

    async def fetch_profile(self, user: bytes) -> s.Profile | None:
        """``user``'s profile from the relay, verified; None if they published none."""
        conn = await self.client.connection()
        try:
            info = await conn.request(f.ProfileGet, user=user)
        except RelayError as exc:
            if exc.code == "not_found":
                return None
            raise
        assert isinstance(info, f.ProfileInfo)
        try:
            profile = s.open_profile(info.record)
        except ProtocolError as exc:
            raise SocialError(f"the relay's profile record is not valid ({exc.message}); "
                              "nothing is shown") from None
        if profile.user != user:
            raise SocialError("the relay answered with another user's profile; nothing is shown")
        return profile

    async def profile(self, peer: str | None = None) -> ProfileView:
        user = await self._user(peer)
        return ProfileView(user, await self._handle(user), await self.fetch_profile(user))

    async def set_profile(self, *, name: str | None = None, bio: str | None = None,
                          avatar: Path | None = None, private: bool | None = None) -> ProfileView:
        """Change the given fields of one's profile (the others stay), sign and publish it."""
        if name is not None and len(name) > s.MAX_DISPLAY_NAME:
            raise SocialError(f"the display name is at most {s.MAX_DISPLAY_NAME} characters")
        if bio is not None and len(bio) > s.MAX_BIO:
            raise SocialError(f"the bio is at most {s.MAX_BIO} characters")
        me = self.client.user
        current = await self.fetch_profile(me) or s.Profile(user=me, updated_at=0)
        changes: dict[str, object] = {"updated_at": max(_now_ms(), current.updated_at + 1)}
        if name is not None:
            changes["display_name"] = name
        if bio is not None:
            changes["bio"] = bio
        if private is not None:
            changes["private"] = private
        if avatar is not None:
            # Sealed like any blob; the key goes into the (public) profile.
            changes["avatar"] = await media.upload(self.client.connection, avatar)
        profile = msgspec.structs.replace(current, **changes)
        record = s.sign_profile(profile, self.client.identity.sign)
        conn = await self.client.connection()
        held = await conn.request(f.ProfileSet, record=record)
        assert isinstance(held, f.ProfileInfo)
        if held.record != record:
            raise SocialError("the relay holds a newer profile than this one (is your clock "
                              "behind?); nothing changed")
        return ProfileView(me, self.client.handle, profile)

    # --- follows ------------------------------------------------------------------------

    async def follow(self, peer: str) -> str:
        """Follow ``peer``: "following", or "requested" for a private account."""
        target = (await self.client.resolve(peer)).user
        if target == self.client.user:
            raise SocialError("you can't follow yourself")
        record = s.sign_follow(s.Follow(follower=self.client.user, target=target,
                                        at=_now_ms()), self.client.identity.sign)
        conn = await self.client.connection()
        state = await conn.request(f.FollowReq, record=record)
        assert isinstance(state, f.FollowState)
        return state.state

    async def unfollow(self, peer: str) -> None:
        target = (await self.client.resolve(peer)).user
        conn = await self.client.connection()
        await conn.request(f.Unfollow, user=target)

    async def approve(self, peer: str) -> None:
        follower = (await self.client.resolve(peer)).user
        record = s.sign_approval(s.Approval(owner=self.client.user, follower=follower,
                                            at=_now_ms()), self.client.identity.sign)
        conn = await self.client.connection()
        try:
            await conn.request(f.ApproveReq, record=record)
        except RelayError as exc:
            if exc.code == "not_found":
                raise SocialError(f"@{peer.lstrip('@')} has not asked to follow you") from None
            raise

    async def deny(self, peer: str) -> None:
        """Deny a follow request, or remove a follower."""
        follower = (await self.client.resolve(peer)).user
        conn = await self.client.connection()
        await conn.request(f.RemoveFollower, user=follower)

    async def followers(self, peer: str | None = None) -> list[FollowView]:
        return await self._list(await self._user(peer), "followers")

    async def following(self, peer: str | None = None) -> list[FollowView]:
        return await self._list(await self._user(peer), "following")

    async def requests(self) -> list[FollowView]:
        return await self._list(self.client.user, "requests")

    async def _list(self, user: bytes, kind: str) -> list[FollowView]:
        conn = await self.client.connection()
        out: list[FollowView] = []
        offset = 0
        while offset < LIST_MAX:
            page = await conn.request(f.FollowList, user=user, kind=kind, offset=offset,
                                      limit=LIST_PAGE)
            assert isinstance(page, f.FollowItems)
            for entry in page.items:
                view = self._verify_entry(user, kind, entry)
                if view is not None:
                    out.append(view)
            offset += len(page.items)
            if not page.more or not page.items:
                break
        return [FollowView(v.user, await self._handle(v.user), v.at, v.approved) for v in out]

    @staticmethod
    def _verify_entry(user: bytes, kind: str, entry: f.FollowEntry) -> FollowView | None:
        """The entry if its records are valid and about ``user``; None (dropped) if not."""
        try:
            rec = s.open_follow(entry.follow)
            approval = s.open_approval(entry.approval) if entry.approval is not None else None
        except ProtocolError as exc:
            log.warning("dropped a %s entry the relay sent: %s", kind, exc.message)
            return None
        mine = rec.follower if kind == "following" else rec.target
        if mine != user or (approval is not None and (approval.owner != rec.target
                                                      or approval.follower != rec.follower)):
            log.warning("dropped a %s entry about someone else", kind)
            return None
        other = rec.target if kind == "following" else rec.follower
        return FollowView(other, None, rec.at, approval is not None)
