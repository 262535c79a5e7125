"""The client side of the social layer: profiles and follows.

Every record the relay hands back is verified here (signature, and that it is
about the user asked for) before anything is shown: the relay is untrusted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ..common import content as c
from ..common import frames as f
from ..common import social as s
from ..common.crypto.errors import CryptoError
from ..common.crypto.media import MediaRef
from ..common.errors import ErrorCode, ProtocolError, TenchatError
from . import media
from .cache import KeyRow
from .connection import RelayError

if TYPE_CHECKING:
    from .service import Client

__all__ = ["SocialService", "SocialError", "ProfileView", "FollowView", "PostView",
           "CommentView"]

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


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


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


class SocialService:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def receive_audience_key(self, author: bytes, content: c.AudienceKey) -> None:
        """A followee's audience key (for their followers-only posts), sent us 1:1 — in
        the open receive transaction."""
        await self.client.cache.audience.put_key(author, content.key_id, content.key,
                                                 self.client.clock())

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
        changes: dict[str, object] = {"updated_at": max(_now_ms(), current.updated_at + 1)}
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
        await self._set_removed(follower, _now_ms())
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
        import json

        async with self.client.cache.transaction():
            current = await self.removed()
            if at is None:
                if current.pop(user, None) is None:
                    return
            else:
                current[user] = at
            await self.client.cache.settings.set(
                "social_removed", json.dumps({k.hex(): v for k, v in current.items()}).encode())

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
                await cache.audience.put_key(me, current.key_id, current.key, _now_ms())
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

    # --- posts ----------------------------------------------------------------------------

    async def post(self, text: str, *, images: list[Path] | None = None,
                   audience: str | None = None, filter: str | None = None,  # noqa: A002
                   ) -> PostView:
        """Sign and publish a post; ``audience`` "public" or "followers" (the default, and
        the only choice, for a private account). ``filter`` (client.imaging, e.g. "sepia"
        or "blur:4") is applied to every image before it is sealed and uploaded."""
        images = images or []
        if len(text) > s.MAX_POST_TEXT:
            raise SocialError(f"a post is at most {s.MAX_POST_TEXT} characters")
        if len(images) > s.MAX_POST_IMAGES:
            raise SocialError(f"a post has at most {s.MAX_POST_IMAGES} images")
        if not text and not images:
            raise SocialError("an empty post: give text or an image")
        me = self.client.user
        private = await self._own_private()
        if audience is None:
            audience = "followers" if private else "public"
        if audience not in ("public", "followers"):
            raise SocialError("the audience is public or followers")
        if private and audience == "public":
            raise SocialError("your account is private: its posts are followers-only")
        if filter is not None:
            if not images:
                raise SocialError("a filter needs an image")
            refs = [await self._upload_filtered(p, filter) for p in images]
        else:
            refs = [await media.upload(self.client.connection, p) for p in images]
        post = s.Post(author=me, id=os.urandom(16), created_at=_now_ms(), text=text,
                      images=refs)
        if audience == "followers":
            key_id, key = await self.sync_audience()
            record = s.seal_post(post, key_id, key, self.client.identity.sign)
        else:
            record = s.sign_post(post, self.client.identity.sign)
        conn = await self.client.connection()
        await conn.request(f.PostPut, record=record)
        return PostView(post.id, me, self.client.handle, post.created_at, audience, text, refs)

    async def _upload_filtered(self, path: Path, spec: str) -> MediaRef:
        from .stories import StoryError, apply_image_filter

        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise SocialError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            data = await apply_image_filter(data, spec)
        except StoryError as exc:
            raise SocialError(str(exc)) from None
        with tempfile.TemporaryDirectory(prefix="tenchat-post-") as tmp:
            filtered = Path(tmp) / path.name
            filtered.write_bytes(data)
            return await media.upload(self.client.connection, filtered)

    async def feed(self, *, limit: int = 20, before: bytes | None = None,
                   authors: list[bytes] | None = None, extras: bool = True) -> list[PostView]:
        """A page of posts, newest first: by ``authors``, or by whom one follows and
        oneself. Every record's signature is checked (invalid ones are dropped) and
        followers-only posts are opened with the author's audience key if we hold it."""
        conn = await self.client.connection()
        page = await conn.request(f.Feed, authors=authors, before=before,
                                  limit=max(1, min(limit, 200)))
        assert isinstance(page, f.FeedItems)
        out: list[PostView] = []
        handles: dict[bytes, str | None] = {}
        keys: dict[tuple[bytes, int], bytes | None] = {}
        for record in page.records:
            try:
                rec = s.open_post(record)
            except ProtocolError as exc:
                log.warning("dropped a post the relay sent: %s", exc.message)
                continue
            if authors is not None and rec.author not in authors:
                log.warning("dropped a post by someone not asked for")
                continue
            # One look-up per author and per key, not per post: each is a cache round trip.
            if rec.author not in handles:
                handles[rec.author] = await self._handle(rec.author)
            handle = handles[rec.author]
            if isinstance(rec, s.Post):
                out.append(PostView(rec.id, rec.author, handle, rec.created_at, "public",
                                    rec.text, list(rec.images)))
                continue
            key_ref = (rec.author, rec.audience_key_id)
            if key_ref not in keys:
                keys[key_ref] = await self.client.cache.audience.key(*key_ref)
            key = keys[key_ref]
            inner: s.Post | None = None
            if key is not None:
                try:
                    inner = s.open_sealed_post(rec, key)
                except (CryptoError, ProtocolError) as exc:
                    log.warning("a followers-only post did not open: %s", exc)
            out.append(PostView(rec.id, rec.author, handle, rec.created_at, "followers",
                                inner.text if inner else None,
                                list(inner.images) if inner else [], rec.audience_key_id))
        return await self._with_extras(out) if extras else out

    async def _with_extras(self, views: list[PostView]) -> list[PostView]:
        """``views`` with the relay's comment and reaction counts (its word: counts carry
        no signatures; the comments themselves are checked when read)."""
        conn = await self.client.connection()
        counts: dict[bytes, f.PostExtra] = {}
        for i in range(0, len(views), 50):
            ids = [v.id for v in views[i:i + 50]]
            got = await conn.request(f.PostExtrasReq, post_ids=ids)
            assert isinstance(got, f.PostExtras)
            counts.update((e.post_id, e) for e in got.items if e.post_id in ids)
        out = []
        for v in views:
            e = counts.get(v.id)
            if e is not None:
                reactions = {k: n for k, n in e.reactions.items()
                             if 0 < len(k) <= s.MAX_EMOJI and n > 0}
                v = replace(v, comments=max(0, e.comments), reactions=reactions)
            out.append(v)
        return out

    # --- comments and reactions -----------------------------------------------------------

    async def find_post(self, ref: str) -> PostView:
        """The post ``ref`` names: its id in hex, or a unique prefix of at least 6 hex
        digits, among the newest 200 posts of one's feed."""
        ref = ref.strip().lower()
        try:
            bytes.fromhex(ref if len(ref) % 2 == 0 else ref + "0")
        except ValueError:
            raise SocialError("a post id is hex digits") from None
        if len(ref) < 6 or len(ref) > 32:
            raise SocialError("give a post id, or at least its first 6 hex digits")
        hits = [v for v in await self.feed(limit=200, extras=False)
                if v.id.hex().startswith(ref)]
        if not hits:
            raise SocialError(f"no post {ref} in your feed")
        if len(hits) > 1:
            raise SocialError(f"{ref} names {len(hits)} posts: give more digits")
        return hits[0]

    async def _post_key(self, post: PostView) -> tuple[int, bytes] | None:
        if post.audience != "followers" or post.key_id is None:
            return None
        key = await self.client.cache.audience.key(post.author, post.key_id)
        if key is None:
            raise SocialError("you can't read this followers-only post, so you can't "
                              "comment on it")
        return post.key_id, key

    async def comment(self, ref: str, text: str) -> CommentView:
        """Comment on a post; on a followers-only post the text is sealed under the post's
        audience key, so only its audience (and not the relay) reads it."""
        if not text:
            raise SocialError("an empty comment")
        if len(text) > s.MAX_COMMENT_TEXT:
            raise SocialError(f"a comment is at most {s.MAX_COMMENT_TEXT} characters")
        post = await self.find_post(ref)
        me = self.client.user
        comment = s.Comment(author=me, post_id=post.id, post_author=post.author,
                            id=os.urandom(16), created_at=_now_ms(), text=text)
        sealing = await self._post_key(post)
        if sealing is not None:
            record = s.seal_comment(comment, sealing[0], sealing[1], self.client.identity.sign)
        else:
            record = s.sign_comment(comment, self.client.identity.sign)
        conn = await self.client.connection()
        await conn.request(f.CommentPut, record=record)
        return CommentView(comment.id, post.id, me, self.client.handle, comment.created_at,
                           text)

    async def react(self, ref: str, emoji: str, *, remove: bool = False) -> PostView:
        """Add (or, ``remove``, withdraw) one's ``emoji`` reaction on a post. Reactions are
        plaintext, on followers-only posts too."""
        if not emoji or len(emoji) > s.MAX_EMOJI:
            raise SocialError(f"an emoji is 1 to {s.MAX_EMOJI} characters")
        if not remove and not s.is_reaction_emoji(emoji):
            raise SocialError(f"{emoji!r} is not one emoji: a reaction is a single emoji")
        post = await self.find_post(ref)
        reaction = s.Reaction(author=self.client.user, post_id=post.id,
                              post_author=post.author, emoji=emoji, created_at=_now_ms(),
                              removed=remove)
        conn = await self.client.connection()
        await conn.request(f.ReactPut, record=s.sign_reaction(reaction,
                                                              self.client.identity.sign))
        return post

    async def comments(self, ref: str, *, limit: int = 50,
                       before: bytes | None = None) -> tuple[PostView, list[CommentView]]:
        """A post and a page of its comments, newest first. Every record's signature is
        checked, and that it is about this post; sealed comments are opened with the post's
        audience key. A plaintext comment on a followers-only post is dropped (its
        audience can't have written it that way)."""
        post = await self.find_post(ref)
        conn = await self.client.connection()
        page = await conn.request(f.CommentsReq, post_id=post.id, before=before,
                                  limit=max(1, min(limit, 200)))
        assert isinstance(page, f.CommentItems)
        return post, await self.verify_comments(post, page.records)

    async def verify_comments(self, post: PostView, records: list[bytes]) -> list[CommentView]:
        out: list[CommentView] = []
        for record in records:
            try:
                rec = s.open_comment(record)
            except ProtocolError as exc:
                log.warning("dropped a comment the relay sent: %s", exc.message)
                continue
            if rec.post_id != post.id or rec.post_author != post.author:
                log.warning("dropped a comment on another post")
                continue
            text: str | None
            if isinstance(rec, s.Comment):
                if post.audience == "followers":
                    log.warning("dropped a plaintext comment on a followers-only post")
                    continue
                text = rec.text
            else:
                if post.audience != "followers":
                    log.warning("dropped a sealed comment on a public post")
                    continue
                key = await self.client.cache.audience.key(post.author, rec.audience_key_id)
                text = None
                if key is not None:
                    try:
                        text = s.open_sealed_comment(rec, key).text
                    except (CryptoError, ProtocolError) as exc:
                        log.warning("dropped a sealed comment that did not open: %s", exc)
                        continue
            out.append(CommentView(rec.id, rec.post_id, rec.author,
                                   await self._handle(rec.author), rec.created_at, text))
        return out
