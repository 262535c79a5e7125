"""Stories against a real relay: authorship, signature, lifetime and image checks on
story_put, and reads of unexpired stories by followed authors."""

from __future__ import annotations

import os
import time

import pytest

from tenchat.common import stories as st
from tenchat.common.crypto import media
from tenchat.common.crypto.media import MediaRef
from tenchat.common.frames import (
    BlobBegin,
    BlobChunk,
    BlobStatus,
    Error,
    FollowReq,
    FollowState,
    Ok,
    StoriesReq,
    StoryItems,
    StoryPut,
)
from tests.relay.test_relay_social import follow, signer
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, assert_alive, async_test, logged_in

pytestmark = pytest.mark.slow

KEY = os.urandom(32)


def record(c: RelayClient, *, signed_by: RelayClient | None = None, image: MediaRef | None = None,
           posted_at: int | None = None, ttl: int = st.STORY_TTL_MS,
           story_id: bytes | None = None, text: str = "hi") -> bytes:
    now = time.time_ns() // 1_000_000 if posted_at is None else posted_at
    story = st.Story(author=c.user, id=story_id or os.urandom(16), posted_at=now,
                     expires_at=now + ttl, text=text, image=image)
    return st.seal_story(story, st.FOLLOWERS, 1, KEY, signer(signed_by or c))


async def error(c: RelayClient, rec: bytes) -> str:
    res = await c.call(StoryPut, record=rec)
    assert isinstance(res, Error), res
    return res.error


async def upload(c: RelayClient, size: int = 3000) -> MediaRef:
    blob, mk = media.encrypt(os.urandom(size))
    status = await c.call(BlobBegin, hash=mk.blob_hash, size=len(blob))
    assert isinstance(status, BlobStatus), status
    status = await c.call(BlobChunk, hash=mk.blob_hash, offset=0, data=blob)
    assert isinstance(status, BlobStatus) and status.offset == len(blob), status
    return MediaRef(hash=mk.blob_hash, key=mk.key, size=mk.size, mime="image/png")


@async_test
async def test_story_put_checks(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 2) as (alice, bob):
        assert await error(bob, record(alice, signed_by=bob)) == "bad_signature"
        assert await error(bob, record(alice)) == "forbidden"
        assert await error(alice, b"\x93junk") == "malformed"
        assert await error(alice, record(alice, ttl=st.STORY_TTL_MS + 1)) == "malformed"
        past = time.time_ns() // 1_000_000 - st.STORY_TTL_MS - 1000
        assert await error(alice, record(alice, posted_at=past)) == "expired"
        future = time.time_ns() // 1_000_000 + 3600_000
        assert await error(alice, record(alice, posted_at=future)) == "expired"
        # the image must be a blob alice stored: not bob's, not an unknown one
        bobs = await upload(bob)
        assert await error(alice, record(alice, image=bobs)) == "not_found"
        ref = MediaRef(hash=os.urandom(32), key=os.urandom(32), size=1)
        assert await error(alice, record(alice, image=ref)) == "not_found"
        mine = await upload(alice)
        rec = record(alice, image=mine)
        assert isinstance(await alice.call(StoryPut, record=rec), Ok)
        assert isinstance(await alice.call(StoryPut, record=rec), Ok)  # idempotent
        again = record(alice, story_id=st.open_story(rec).id, text="other")
        assert await error(alice, again) == "forbidden"
        await assert_alive(alice, bob)  # errors changed nothing and closed nothing


@async_test
async def test_stories_of_followed_authors_newest_first(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        recs = [record(alice, text=f"s{i}") for i in range(3)]
        for rec in recs:
            assert isinstance(await alice.call(StoryPut, record=rec), Ok)
        assert isinstance(await carol.call(StoryPut, record=record(carol)), Ok)
        page = await bob.call(StoriesReq)
        assert isinstance(page, StoryItems) and page.records == []  # follows nobody
        assert isinstance(await bob.call(FollowReq, record=follow(bob, alice)), FollowState)
        page = await bob.call(StoriesReq)
        assert isinstance(page, StoryItems) and page.records == recs[::-1]
        page = await bob.call(StoriesReq, authors=[carol.user], limit=1)
        assert isinstance(page, StoryItems) and len(page.records) == 1 and not page.more
        page = await bob.call(StoriesReq, authors=[alice.user], limit=2)
        assert isinstance(page, StoryItems) and page.records == recs[:0:-1] and page.more
