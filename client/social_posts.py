"""Posts, the feed, comments and reactions on posts: the part of the social service
(client/social.py) that publishes and reads posts. Every record the relay hands back is
verified before it is shown (the relay is untrusted)."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..common import frames as f
from ..common import social as s
from ..common.crypto.errors import CryptoError
from ..common.crypto.media import MediaRef
from ..common.errors import ProtocolError
from . import media
from .cache import KeyRow
from .social_types import CommentView, PostView, SocialError, now_ms

if TYPE_CHECKING:
    from .service import Client

__all__ = ["PostsMixin"]

log = logging.getLogger("tenchat.client.social")


class PostsMixin:
    """Mixed into SocialService, whose profile and follow methods these use."""

    client: Client

    if TYPE_CHECKING:
        async def _handle(self, user: bytes) -> str | None: ...
        async def _own_private(self) -> bool: ...
        async def sync_audience(self) -> KeyRow: ...

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
        post = s.Post(author=me, id=os.urandom(16), created_at=now_ms(), text=text,
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
                            id=os.urandom(16), created_at=now_ms(), text=text)
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
                              post_author=post.author, emoji=emoji, created_at=now_ms(),
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
