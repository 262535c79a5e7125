"""The client side of the social layer: profiles and follows.

Every record the relay hands back is verified here (signature, and that it is
about the user asked for) before anything is shown: the relay is untrusted.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ..common import content as c
from ..common import frames as f
from ..common import social as s
from ..common.errors import ErrorCode, ProtocolError
from . import media
from .cache import KeyRow
from .connection import RelayError
from .events import Event
from .rules import Incoming
from .social_posts import PostsMixin
from .social_rules import PutAudienceKey, SocialFacts, apply_social
from .social_types import (
    CommentView,
    FollowView,
    PostView,
    ProfileView,
    SocialError,
    now_ms,
)

if TYPE_CHECKING:
    from .service import Client

__all__ = ["SocialService", "SocialError", "ProfileView", "FollowView", "PostView",
           "CommentView"]

log = logging.getLogger("tenchat.client.social")

LIST_PAGE = 500  # entries per follow_list request
LIST_MAX = 10_000  # entries read for one listing, at most


def _overruled(view: FollowView, removed: dict[bytes, int], kind: str, *,
               private: bool | None = None) -> bool:
    """True if the owner removed / denied ``view.user`` at or after the records that make
    them a follower (or requester): a relay replaying the old follow and approval can't
    bring them back. Only an approval signed after the removal (or, unless the account
    is known to be private, a follow request made after it) counts."""
    at = removed.get(view.user)
    if at is None:
        return False
    if view.approved and view.approved_at > at:
        return False
    if kind == "requests" or private is False:
        return view.at <= at
    return True


class SocialService(PostsMixin):
    """Profiles, follows and followers-only audience keys here; posts in PostsMixin."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def receive_audience_key(self, item: Incoming) -> None:
        """A followee's audience key (for their followers-only posts) — in the open
        receive transaction: the rules decide (client/social_rules.py), this writes."""
        effects = apply_social(SocialFacts(self.client.clock()), item)
        for write in effects.writes:
            if isinstance(write, PutAudienceKey):
                await self.client.cache.audience.put_key(write.author, write.key_id,
                                                         write.key, write.at)

    async def _user(self, peer: str | None) -> bytes:
        return self.client.user if peer is None else (await self.client.resolve(peer)).user

    async def _handle(self, user: bytes) -> str | None:
        if user == self.client.user:
            return self.client.handle
        if await self.client.cache.contacts.get(user) is None:
            async with self.client.cache.transaction():
                await self.client.name_sender(user, spoke=False)
        contact = await self.client.cache.contacts.get(user)
        return contact.handle if contact is not None else None

    # --- profiles -----------------------------------------------------------------------

    async def fetch_profile(self, user: bytes) -> s.Profile | None:
        """``user``'s profile from the relay, verified; None if they published none."""
        got = await self._fetch_profile(user)
        return got[0] if got is not None else None

    async def _fetch_profile(self, user: bytes) -> tuple[s.Profile, bytes] | None:
        conn = await self.client.connection()
        try:
            info = await conn.request(f.ProfileGet, user=user)
        except RelayError as exc:
            if exc.code == ErrorCode.NOT_FOUND:
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
        return profile, info.record

    async def profile(self, peer: str | None = None) -> ProfileView:
        user = await self._user(peer)
        if user == self.client.user:
            return ProfileView(user, self.client.handle, await self.own_profile())
        return ProfileView(user, await self._handle(user), await self.fetch_profile(user))

    OWN_PROFILE = "social.own_profile"  # cache meta: the newest own profile record seen

    async def _local_profile(self) -> s.Profile | None:
        record = await self.client.cache.settings.get(self.OWN_PROFILE)
        if record is None:
            return None
        try:
            profile = s.open_profile(record)
        except ProtocolError:
            return None
        return profile if profile.user == self.client.user else None

    async def _keep_own(self, record: bytes) -> None:
        async with self.client.cache.transaction():
            await self.client.cache.settings.set(self.OWN_PROFILE, record)

    async def own_profile(self) -> s.Profile | None:
        """One's own profile: the newest of the copy kept here (every profile this device
        publishes, and the newest it has seen) and the relay's. The relay can withhold
        or roll back a profile, never forge a newer one, so the local copy is the floor
        (security review H2): a relay hiding a private account's profile can't make this
        client treat the account as public."""
        local = await self._local_profile()
        try:
            got = await self._fetch_profile(self.client.user)
        except (SocialError, RelayError):
            got = None
        if got is not None and (local is None or got[0].updated_at > local.updated_at):
            await self._keep_own(got[1])  # newer, and signed by this identity
            return got[0]
        return local

    async def _own_private(self) -> bool:
        profile = await self.own_profile()
        return profile is not None and profile.private

    async def set_profile(self, *, name: str | None = None, bio: str | None = None,
                          avatar: Path | None = None, private: bool | None = None,
                          nft_avatar: s.NftAvatar | None = None) -> ProfileView:
        """Change the given fields of one's profile (the others stay), sign and publish it."""
        if name is not None and len(name) > s.MAX_DISPLAY_NAME:
            raise SocialError(f"the display name is at most {s.MAX_DISPLAY_NAME} characters")
        if bio is not None and len(bio) > s.MAX_BIO:
            raise SocialError(f"the bio is at most {s.MAX_BIO} characters")
        me = self.client.user
        # Built on the newest copy, never the relay's alone: a withheld profile must not
        # turn into a public one when only the bio changes (security review H2).
        current = await self.own_profile() or s.Profile(user=me, updated_at=0)
        changes: dict[str, object] = {"updated_at": max(now_ms(), current.updated_at + 1)}
        if name is not None:
            changes["display_name"] = name
        if bio is not None:
            changes["bio"] = bio
        if private is not None:
            changes["private"] = private
        if nft_avatar is not None:
            changes["nft_avatar"] = nft_avatar
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
        await self._keep_own(record)
        return ProfileView(me, self.client.handle, profile)

    # --- follows ------------------------------------------------------------------------

    async def follow(self, peer: str) -> str:
        """Follow ``peer``: "following", or "requested" for a private account."""
        target = (await self.client.resolve(peer)).user
        if target == self.client.user:
            raise SocialError("you can't follow yourself")
        record = s.sign_follow(s.Follow(follower=self.client.user, target=target,
                                        at=now_ms()), self.client.identity.sign)
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
                                            at=now_ms()), self.client.identity.sign)
        await self._set_removed(follower, None)  # this approval is newer than any removal
        conn = await self.client.connection()
        try:
            await conn.request(f.ApproveReq, record=record)
        except RelayError as exc:
            if exc.code == ErrorCode.NOT_FOUND:
                raise SocialError(f"@{peer.lstrip('@')} has not asked to follow you") from None
            raise
        await self.sync_audience()  # the new follower gets the current audience key

    async def deny(self, peer: str) -> None:
        """Deny a follow request, or remove a follower. Kept here first: from now on this
        client counts them as a follower only on a signed approval (or, for a public
        account, a follow request) made after this moment, whatever list the relay sends
        back later; then the relay is asked to drop them."""
        follower = (await self.client.resolve(peer)).user
        await self._set_removed(follower, now_ms())
        conn = await self.client.connection()
        await conn.request(f.RemoveFollower, user=follower)
        # A removed follower held the audience key: the check rotates it.
        await self.sync_audience()

    remove_follower = deny

    async def followers(self, peer: str | None = None) -> list[FollowView]:
        return await self._list(await self._user(peer), "followers")

    async def following(self, peer: str | None = None) -> list[FollowView]:
        return await self._list(await self._user(peer), "following")

    async def requests(self) -> list[FollowView]:
        return await self._list(self.client.user, "requests")

    async def _list(self, user: bytes, kind: str) -> list[FollowView]:
        out = await self._verified(user, kind)
        if user == self.client.user and kind in ("followers", "requests"):
            removed = await self.removed()
            if removed:
                private = await self._own_private()
                out = [v for v in out if not _overruled(v, removed, kind, private=private)]
        return [FollowView(v.user, await self._handle(v.user), v.at, v.approved,
                           v.approved_at) for v in out]

    # --- removals and denials, kept here --------------------------------------------------

    async def removed(self) -> dict[bytes, int]:
        """Followers removed and requests denied from this device: user -> when (ms).
        The author's own decision: no list the relay sends can undo it."""
        import json

        raw = await self.client.cache.settings.get("social_removed")
        if not raw:
            return {}
        return {bytes.fromhex(k): int(v) for k, v in json.loads(raw).items()}

    async def _set_removed(self, user: bytes, at: int | None) -> None:
        """Record a removal (``at``) or an approval (None, now) here and, in the same
        transaction, for our other devices (``state`` ``follower``, issue 16)."""
        async with self.client.cache.transaction():
            await self._write_removed(user, at)
            await self.client.tell_devices("follower", at is None, user, at=at or now_ms())
        await self.client.send_devices_soon()

    async def _write_removed(self, user: bytes, at: int | None) -> None:
        """In the open transaction."""
        import json

        current = await self.removed()
        if at is None:
            if current.pop(user, None) is None:
                return
        else:
            current[user] = at
        await self.client.cache.settings.set(
            "social_removed", json.dumps({k.hex(): v for k, v in current.items()}).encode())

    async def apply_state(self, state: c.State, events: list[Event]) -> None:
        """Another device of ours approved (``value``) or removed / denied the follower
        ``target`` at ``at``; in the open receive transaction. The later decision wins,
        as it would have on one device. The audience key that device rotated reaches us
        as sync copies (client/device_sync.py)."""
        if len(state.target) != 32 or not state.at:
            return
        at = (await self.removed()).get(state.target)
        if state.value and at is not None and at < state.at:
            await self._write_removed(state.target, None)
        elif not state.value and (at is None or at < state.at):
            await self._write_removed(state.target, state.at)

    async def _verified(self, user: bytes, kind: str) -> list[FollowView]:
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
        return out

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
        return FollowView(other, None, rec.at, approval is not None,
                          approval.at if approval is not None else 0)


    # --- audience keys --------------------------------------------------------------------

    async def sync_audience(self) -> KeyRow:
        """Bring the audience key up to date with one's followers; the current key.

        A new key is made when there is none, or when someone who was sent the current
        one no longer follows (unfollowed, or was removed); every current follower who
        lacks the current key gets it 1:1 (end-to-end, content ``audience_key``). For a
        private account only followers carrying one's signed approval count, so the
        relay can't slip in a follower.
        """
        me = self.client.user
        private = await self._own_private()  # from the local copy, not the relay's word
        removed = await self.removed()
        followers = {v.user for v in await self._verified(me, "followers")
                     if (v.approved or not private)
                     and not _overruled(v, removed, "followers", private=private)}
        cache = self.client.cache
        sent = False
        async with self.client.cache.transaction():
            members = await cache.audience.members()
            current = await cache.audience.current_key(me)
            if current is None or any(u not in followers or k != current.key_id
                                      for u, k in members.items()):
                current = KeyRow(int.from_bytes(os.urandom(4), "big"),
                                 os.urandom(s.AUDIENCE_KEY_LEN))
                await cache.audience.put_key(me, current.key_id, current.key, now_ms())
                members = {}
            body = c.encode_content(c.AudienceKey(key_id=current.key_id, key=current.key))
            for user in sorted(followers - members.keys()):
                await self.client.queue_content(user, os.urandom(16), body)
                members[user] = current.key_id
                sent = True
            await cache.audience.set_members(members)
        if sent:
            await self.client.flush_outbox()
        return current

