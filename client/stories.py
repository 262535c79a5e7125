"""The client side of 24-hour stories (``client.stories``): post, list, open, view receipts,
and the close-friends list.

A story is sealed here under the author's audience key (followers) or close-friends key
(common.stories) and only then handed to the relay; every record the relay returns is
checked (signature, lifetime) before it is kept, and the cache drops stories once they
expire. Opening someone's story sends them an end-to-end view receipt (content
``story_view``, an ordinary message to the relay) unless the ``incognito`` setting is on.

The names here (StoryView, post_story, stories, open_story) are a stable API for UIs.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ..common import content as c
from ..common import frames as f
from ..common import stories as st
from ..common.crypto.errors import CryptoError
from ..common.crypto.media import MediaRef
from ..common.errors import ProtocolError, TenchatError
from ..common.social import AUDIENCE_KEY_LEN
from . import media
from .cache import KeyRow
from .connection import ConnectionLost, RelayUnreachable
from .events import Event, StoryPosted
from .rules import Incoming
from .social_rules import AddStoryView, PutStoryKey, SocialFacts, apply_social

if TYPE_CHECKING:
    from .service import Client

__all__ = ["StoryService", "StoryView", "StoryViewer", "StoryError"]

log = logging.getLogger("tenchat.client.stories")

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # a story image read into memory, at most


class StoryError(TenchatError):
    """A story could not be posted, found or opened; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class StoryView:
    """One verified story. ``image`` holds the decrypted image bytes only after
    open_story (or for one's own story just posted); ``has_image`` says there is one."""

    id: bytes
    author: bytes
    handle: str | None
    posted_at: int  # the author's clock, ms
    expires_at: int  # ms; the story is gone after this
    text: str | None
    has_image: bool
    image: bytes | None
    seen: bool
    close_friends: bool  # sealed for the author's close friends (else for followers)


@dataclass(frozen=True, slots=True)
class StoryViewer:
    """Someone who opened one of our stories (their end-to-end view receipt)."""

    user: bytes
    handle: str | None
    at: int  # the viewer's clock, ms


class StoryService:
    def __init__(self, client: Client) -> None:
        self.client = client
        # story_new pushes are handled one at a time, in the order they came (FIFO lock)
        self._pushes = asyncio.Lock()

    async def receive(self, item: Incoming, events: list[Event]) -> None:
        """A peer's close-friends key, or their view receipt on one of our stories — in the
        open receive transaction: the rules decide (client/social_rules.py), this writes."""
        cache, content = self.client.cache, item.content
        facts = SocialFacts(self.client.clock())
        if isinstance(content, c.StoryViewed):
            story = await cache.stories.get(content.story, facts.now)
            viewers = {v.viewer for v in await cache.stories.views(content.story)}
            facts = replace(facts, our_story=story is not None
                            and story.author == self.client.user,
                            viewed=item.author in viewers)
        effects = apply_social(facts, item)
        for write in effects.writes:
            match write:
                case PutStoryKey(author, key_id, key, at):
                    await cache.stories.put_key(author, key_id, key, at)
                case AddStoryView(story_id, viewer, at):
                    await cache.stories.add_view(story_id, viewer, at, self.client.user)
        events.extend(effects.events)

    async def _handle(self, user: bytes) -> str | None:
        """The user's verified handle; None if it is unknown and the relay can't be asked."""
        try:
            return await self.client.social._handle(user)
        except (ConnectionLost, RelayUnreachable):
            contact = await self.client.cache.contacts.get(user)
            return contact.handle if contact is not None else None

    # --- posting ----------------------------------------------------------------------------

    async def post_story(self, text: str | None = None, image: Path | bytes | None = None,
                         filter: str | None = None,  # noqa: A002 - the API's name
                         close_friends: bool = False) -> StoryView:
        """Seal and publish a story living 24 hours: ``text`` and/or ``image`` (a file or its
        bytes, with an optional image ``filter`` such as "sepia" or "blur:4" applied
        first), for one's followers or, ``close_friends``, for the close-friends list."""
        text = text or ""
        if len(text) > st.MAX_STORY_TEXT:
            raise StoryError(f"a story's text is at most {st.MAX_STORY_TEXT} characters")
        if not text and image is None:
            raise StoryError("an empty story: give text or an image")
        if filter is not None and image is None:
            raise StoryError("a filter needs an image")
        client = self.client
        data: bytes | None = None
        name = ""
        if image is not None:
            data, name = await _read_image(image)
            if filter is not None:
                data = await apply_image_filter(data, filter)
        # The key is brought up to date while the image uploads: the one touches the cache
        # and the 1:1 sessions, the other only the relay's blob store.
        keying = asyncio.create_task(
            self.sync_close_friends() if close_friends else client.social.sync_audience())
        ref: MediaRef | None = None
        try:
            if data is not None:
                ref = await self._upload_image(data, name)
        except BaseException:
            await asyncio.wait([keying])  # let it finish; the upload's error is the one told
            if not keying.cancelled():
                keying.exception()
            raise
        key_id, key = await keying
        audience = st.CLOSE_FRIENDS if close_friends else st.FOLLOWERS
        me = client.user
        now = self.client.clock()
        story = st.Story(author=me, id=os.urandom(16), posted_at=now,
                         expires_at=now + st.STORY_TTL_MS, text=text, image=ref)
        record = st.seal_story(story, audience, key_id, key, client.identity.sign)
        conn = await client.connection()
        await conn.request(f.StoryPut, record=record)
        async with client.cache.transaction():
            await client.cache.stories.put(story.id, me, story.posted_at, story.expires_at,
                                         record, seen=True)
        return StoryView(story.id, me, client.handle, story.posted_at, story.expires_at,
                         text, ref is not None, data, True, close_friends)

    async def _upload_image(self, data: bytes, name: str) -> MediaRef:
        from . import imaging  # Pillow: loaded only for images

        try:
            fmt, width, height = await asyncio.to_thread(imaging.image_info, data)
        except imaging.ImageError:
            raise StoryError("the story's image is not an image tenchat can read") from None
        mime = _IMAGE_MIME.get(fmt) or mimetypes.guess_type(name)[0] or "image/png"
        try:
            ref = await media.upload_bytes(self.client.connection, data, name=name, mime=mime)
        except media.AttachmentError as exc:
            raise StoryError(f"the story's image: {exc}") from None
        return msgspec.structs.replace(ref, width=width, height=height)

    # --- reading ----------------------------------------------------------------------------

    async def refresh(self, authors: list[bytes] | None = None) -> None:
        """Fetch the unexpired story records of ``authors`` (None: whom we follow, and us)
        from the relay; keep the valid ones, drop expired ones from the cache."""
        conn = await self.client.connection()
        page = await conn.request(f.StoriesReq, authors=authors)
        assert isinstance(page, f.StoryItems)
        cache = self.client.cache
        now = self.client.clock()
        kept: list[tuple[st.SealedStory, bytes]] = []
        for record in page.records:
            try:
                sealed = st.open_story(record)
            except ProtocolError as exc:
                log.warning("dropped a story the relay sent: %s", exc.message)
                continue
            if authors is not None and sealed.author not in authors:
                log.warning("dropped a story by someone not asked for")
                continue
            if sealed.expires_at > now:
                kept.append((sealed, record))
        async with cache.transaction():
            for sealed, record in kept:
                await cache.stories.put(sealed.id, sealed.author, sealed.posted_at,
                                      sealed.expires_at, record)
            await cache.stories.drop_expired(now)

    async def pushed(self, author: bytes, story_id: bytes) -> None:
        """The relay's ``story_new``: fetch ``author``'s stories and emit
        :class:`StoryPosted` if ``story_id`` is among them and opens for us (a
        close-friends story we hold no key for is not news to us)."""
        if author == self.client.user:
            return
        async with self._pushes:
            if await self.client.cache.stories.get(story_id, self.client.clock()) is None:
                try:
                    await self.refresh([author])
                except (ConnectionLost, RelayUnreachable, TenchatError) as exc:
                    log.info("story fetch after a push: %s", exc)
                    return
            row = await self.client.cache.stories.get(story_id, self.client.clock())
            if row is None or row.author != author:
                return  # expired already, or not by that author after all
            view = await self._view(row.record, row.seen)
        if view is not None and view.author == author:
            self.client.emit(StoryPosted(view.id, view.author, view.handle))

    async def stories(self) -> list[StoryView]:
        """The unexpired stories of whom we follow (and ours) that we can open, without
        image bytes (from the cache alone when the relay can't be reached): grouped by
        author — authors with an unseen story first, then by their newest story — and each
        author's stories newest first."""
        try:
            await self.refresh()
        except (ConnectionLost, RelayUnreachable):
            # Offline: what the cache holds, minus what has expired meanwhile.
            async with self.client.cache.transaction():
                await self.client.cache.stories.drop_expired(self.client.clock())
        return await self._cached(None)

    async def stories_of(self, peer: str) -> list[StoryView]:
        """``peer``'s unexpired stories, oldest first, followed or not; those we can't
        open are listed too, with ``text`` None."""
        user = (await self.client.resolve(peer)).user if peer != "me" else self.client.user
        await self.refresh([user])
        views = await self._cached(user, include_sealed=True)
        return sorted(views, key=lambda v: (v.posted_at, v.id))

    async def _cached(self, author: bytes | None, *,
                      include_sealed: bool = False) -> list[StoryView]:
        cache = self.client.cache
        now = self.client.clock()
        out: list[StoryView] = []
        for story_id, who, record, seen in await cache.stories.live(now):
            if author is not None and who != author:
                continue
            view = await self._view(record, seen)
            if view is None:
                if not include_sealed:
                    continue
                sealed = st.open_story(record)
                view = StoryView(story_id, who, await self._handle(who),
                                 sealed.posted_at, sealed.expires_at, None,
                                 sealed.blob is not None, None, seen,
                                 sealed.audience == st.CLOSE_FRIENDS)
            out.append(view)
        newest: dict[bytes, int] = {}
        unseen: set[bytes] = set()
        for v in out:
            newest[v.author] = max(newest.get(v.author, 0), v.posted_at)
            if not v.seen:
                unseen.add(v.author)
        out.sort(key=lambda v: (v.author not in unseen, -newest[v.author], v.author,
                                -v.posted_at, v.id))
        return out

    async def _open(self, record: bytes) -> tuple[st.SealedStory, st.Story | None]:
        sealed = st.open_story(record)
        cache = self.client.cache
        if sealed.audience == st.CLOSE_FRIENDS:
            key = await cache.stories.key(sealed.author, sealed.key_id)
        else:
            key = await cache.audience.key(sealed.author, sealed.key_id)
        if key is None:
            return sealed, None
        try:
            return sealed, st.open_sealed_story(sealed, key)
        except (CryptoError, ProtocolError) as exc:
            log.warning("a story did not open: %s", exc)
            return sealed, None

    async def _view(self, record: bytes, seen: bool,
                    image: bytes | None = None) -> StoryView | None:
        sealed, story = await self._open(record)
        if story is None:
            return None
        return StoryView(story.id, story.author, await self._handle(story.author),
                         story.posted_at, story.expires_at, story.text,
                         story.image is not None, image, seen,
                         sealed.audience == st.CLOSE_FRIENDS)

    async def find_story(self, ref: str) -> bytes:
        """The id of the story ``ref`` names: its id in hex, or a unique prefix of at least
        6 hex digits, among the unexpired stories we hold (refreshed first)."""
        ref = ref.strip().lower()
        if not 6 <= len(ref) <= 32 or any(ch not in "0123456789abcdef" for ch in ref):
            raise StoryError("give a story id, or at least its first 6 hex digits")
        now = self.client.clock()
        hits = await self.client.cache.stories.ids_like(ref, now)
        if not hits:
            await self.refresh()
            hits = await self.client.cache.stories.ids_like(ref, now)
        if not hits:
            raise StoryError(f"no story {ref} (it may have expired)")
        if len(hits) > 1:
            raise StoryError(f"{ref} names {len(hits)} stories: give more digits")
        return hits[0]

    async def open_story(self, story_id: bytes) -> StoryView:
        """Open a story: decrypt it and its image, mark it seen and — unless the
        ``incognito`` setting is on, or it is ours — send its author a view receipt."""
        client = self.client
        cache = client.cache
        now = self.client.clock()
        row = await cache.stories.get(story_id, now)
        if row is None:
            await self.refresh()
            row = await cache.stories.get(story_id, now)
        if row is None:
            raise StoryError("no such story (it may have expired)")
        author, record, seen = row.author, row.record, row.seen
        sealed, story = await self._open(record)
        if story is None:
            who = "close friends" if sealed.audience == st.CLOSE_FRIENDS else "followers"
            raise StoryError(f"you can't open this story: it is for its author's {who}")
        receipt = (not seen and author != client.user
                   and not await client.setting("incognito"))
        # The receipt goes out while the image downloads (the story is open: its text is
        # read); the cache is touched by the receipt alone until both are done.
        sending = asyncio.create_task(self._send_receipt(author, story_id)) if receipt else None
        image: bytes | None = None
        try:
            if story.image is not None:
                image = await self._download(story.image)
        finally:
            if sending is not None:
                await sending
        async with cache.transaction():
            await cache.stories.mark_seen(story_id)
        view = await self._view(record, True, image)
        assert view is not None
        return view

    async def _send_receipt(self, author: bytes, story_id: bytes) -> None:
        """Queue (encrypted, in the outbox) and send a view receipt to ``author``."""
        client = self.client
        body = c.encode_content(c.StoryViewed(story=story_id, at=self.client.clock()))
        async with client.cache.transaction():
            await client.queue_content(author, os.urandom(16), body)
        await client.flush_outbox()

    async def _download(self, ref: MediaRef) -> bytes:
        if ref.size > MAX_IMAGE_BYTES:
            raise StoryError("the story's image is too large to open")
        try:
            return await media.download_bytes(self.client.connection, ref)
        except media.AttachmentError as exc:
            raise StoryError(f"the story's image: {exc}") from None

    # --- view receipts ----------------------------------------------------------------------

    async def viewers(self, story_id: bytes) -> list[StoryViewer]:
        """Who opened our story ``story_id`` (from their view receipts; sync first)."""
        row = await self.client.cache.stories.get(story_id, self.client.clock())
        if row is None:
            raise StoryError("no such story (it may have expired)")
        if row.author != self.client.user:
            raise StoryError("only the author of a story sees who viewed it")
        return [StoryViewer(user, await self._handle(user), at)
                for user, at in await self.client.cache.stories.views(story_id)]

    # --- close friends ----------------------------------------------------------------------

    async def close_friends(self) -> list[tuple[bytes, str | None]]:
        members = await self.client.cache.stories.close_friends()
        out = [(u, await self._handle(u)) for u in members]
        return sorted(out, key=lambda x: (x[1] or "", x[0]))

    async def add_close_friend(self, peer: str) -> None:
        """Add ``peer`` to the close-friends list; they get the close-friends key 1:1."""
        user = (await self.client.resolve(peer)).user
        if user == self.client.user:
            raise StoryError("you are always among your own close friends")
        async with self.client.cache.transaction():
            await self.client.cache.stories.set_close_friend(user, True)
            await self.client.tell_devices("close_friend", True, user)
        await self.sync_close_friends()

    async def remove_close_friend(self, peer: str) -> None:
        """Take ``peer`` off the list. The key rotates, so they can't open close-friends
        stories posted from now on (nor can the relay ever)."""
        user = (await self.client.resolve(peer)).user
        cache = self.client.cache
        async with cache.transaction():
            if not await cache.stories.set_close_friend(user, False):
                raise StoryError(f"@{peer.lstrip('@')} is not on your close-friends list")
            await self._new_story_key()
            await self.client.tell_devices("close_friend", False, user)
        await self.sync_close_friends()
        await self.client.send_devices_soon()  # if no friend is left to send a key to

    async def apply_state(self, state: c.State, events: list[Event]) -> None:
        """Another device of ours added (``value``) or removed the close friend
        ``target``; in the open receive transaction. A removal rotates the key here too,
        at once, so no story posted here is sealed under a key the removed friend holds
        (the key that device made reaches us as sync copies: client/device_sync.py)."""
        if len(state.target) != 32:
            return
        changed = await self.client.cache.stories.set_close_friend(state.target, state.value)
        if changed and not state.value:
            await self._new_story_key()

    async def _new_story_key(self) -> KeyRow:
        cache = self.client.cache
        key = KeyRow(int.from_bytes(os.urandom(4), "big"), os.urandom(AUDIENCE_KEY_LEN))
        await cache.stories.put_key(self.client.user, key.key_id, key.key, self.client.clock())
        friends = await cache.stories.close_friends()
        await cache.stories.set_close_friend_keys(dict.fromkeys(friends))
        return key

    async def sync_close_friends(self) -> KeyRow:
        """Make sure every close friend holds the current close-friends key (sent 1:1,
        end-to-end, content ``story_key``); the current key (made if there is none)."""
        client = self.client
        cache = client.cache
        sent = False
        async with client.cache.transaction():
            current = await cache.stories.current_key(client.user)
            if current is None:
                current = await self._new_story_key()
            members = await cache.stories.close_friends()
            body = c.encode_content(c.StoryKey(key_id=current.key_id, key=current.key))
            for user, key_id in sorted(members.items()):
                if key_id != current.key_id:
                    await client.queue_content(user, os.urandom(16), body)
                    members[user] = current.key_id
                    sent = True
            await cache.stories.set_close_friend_keys(members)
        if sent:
            await client.flush_outbox()
        return current


_IMAGE_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


async def _read_image(image: Path | bytes) -> tuple[bytes, str]:
    if isinstance(image, bytes):
        return image, "story"
    try:
        size = image.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise StoryError(f"{image.name} is too large for a story "
                             f"(at most {MAX_IMAGE_BYTES} bytes)")
        return await asyncio.to_thread(image.read_bytes), image.name
    except OSError as exc:
        raise StoryError(f"cannot read {image}: {exc.strerror or exc}") from None


async def apply_image_filter(data: bytes, spec: str) -> bytes:
    """``data`` with the image filter ``spec`` applied (client.imaging), off the loop;
    StoryError for a bad filter or an unreadable image."""
    from . import imaging  # Pillow: loaded only for images

    try:
        return await asyncio.to_thread(imaging.apply_filter, data, spec)
    except imaging.ImageError as exc:
        raise StoryError(str(exc)) from None
