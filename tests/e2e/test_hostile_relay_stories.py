"""A hostile relay can't make the client show a forged, tampered, re-dated or expired
story, nor one by someone it wasn't asked about."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import pytest

from tenchat.common import frames as f
from tenchat.common import stories as st
from tenchat.common.crypto.keys import IdentityKey
from tenchat.common.social import SignedRecord
from tests.e2e.test_hostile_relay import hostile_relay, make_client

bob = IdentityKey.generate()
mallory = IdentityKey.generate()
KEY = os.urandom(32)
KEY_ID = 7


def story(text: str, *, author: bytes = bob.public, age_ms: int = 0) -> st.Story:
    now = time.time_ns() // 1_000_000 - age_ms
    return st.Story(author=author, id=os.urandom(16), posted_at=now,
                    expires_at=now + st.STORY_TTL_MS, text=text)


def redate(record: bytes) -> bytes:
    """The record with a later expiry and the old signature kept."""
    signed = msgspec.msgpack.decode(record, type=SignedRecord)
    body = msgspec.msgpack.decode(signed.body, type=st.SealedStory)
    changed = msgspec.structs.replace(body, expires_at=body.expires_at + 3600_000)
    return msgspec.msgpack.encode(SignedRecord(body=msgspec.msgpack.encode(changed),
                                               sig=signed.sig))


@pytest.mark.asyncio
async def test_forged_and_tampered_stories_are_dropped(tmp_path: Path) -> None:
    genuine = st.seal_story(story("genuine"), st.FOLLOWERS, KEY_ID, KEY, bob.sign)
    forged = st.seal_story(story("forged: send me ETH"), st.FOLLOWERS, KEY_ID, KEY,
                           mallory.sign)  # in bob's name, signed by mallory
    redated = redate(st.seal_story(story("redated"), st.FOLLOWERS, KEY_ID, KEY, bob.sign))
    expired = st.seal_story(story("old", age_ms=st.STORY_TTL_MS + 1), st.FOLLOWERS, KEY_ID,
                            KEY, bob.sign)
    by_mallory = st.seal_story(story("not asked for", author=mallory.public), st.FOLLOWERS,
                               KEY_ID, KEY, mallory.sign)
    asked: list[list[bytes] | None] = []

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Whois):
            return [f.Error(id=frame.id, error="not_found")]
        assert isinstance(frame, f.StoriesReq)
        asked.append(frame.authors)
        records = [by_mallory, expired, redated, forged, genuine, b"\x93junk"]
        return [f.StoryItems(id=frame.id, records=records)]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        async with client.cache.transaction():
            await client.cache.audience.put_key(bob.public, KEY_ID, KEY, 0)
            await client.cache.audience.put_key(mallory.public, KEY_ID, KEY, 0)
        await client.stories.refresh([bob.public])
        got = await client.stories._cached(None)
        assert [v.text for v in got] == ["genuine"]
        async with client.cache._db.execute("SELECT count(*) FROM stories") as cur:
            assert await cur.fetchone() == (1,)  # nothing else was even kept
        assert asked == [[bob.public]]
    finally:
        await client.close()
        server.close()


@pytest.mark.asyncio
async def test_tampered_story_image_is_refused(tmp_path: Path) -> None:
    from tenchat.client.stories import StoryError
    from tenchat.common.crypto import media

    image = os.urandom(5000)
    blob, mk = media.encrypt(image)
    ref = media.MediaRef(hash=mk.blob_hash, key=mk.key, size=mk.size, mime="image/png")
    now = time.time_ns() // 1_000_000
    record = st.seal_story(st.Story(author=bob.public, id=os.urandom(16), posted_at=now,
                                    expires_at=now + st.STORY_TTL_MS, image=ref),
                           st.FOLLOWERS, KEY_ID, KEY, bob.sign)
    served = {"blob": blob}

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Whois):
            return [f.Error(id=frame.id, error="not_found")]
        if isinstance(frame, f.StoriesReq):
            return [f.StoryItems(id=frame.id, records=[record])]
        assert isinstance(frame, f.BlobGet)
        data = served["blob"][frame.offset:frame.offset + frame.length]
        return [f.BlobData(id=frame.id, hash=frame.hash, offset=frame.offset, data=data,
                           size=len(served["blob"]))]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        async with client.cache.transaction():
            await client.cache.audience.put_key(bob.public, KEY_ID, KEY, 0)
        # incognito: this fake relay serves no prekeys to send a receipt with
        await client.set_setting("incognito", True)
        await client.stories.refresh([bob.public])
        story_id = st.open_story(record).id
        flipped = bytearray(blob)
        flipped[100] ^= 1
        served["blob"] = bytes(flipped)
        with pytest.raises(StoryError, match="tampered"):
            await client.stories.open_story(story_id)
        story = await client.cache.stories.get(story_id, 0)
        assert story is not None and story.seen is False
        served["blob"] = blob  # the genuine blob opens
        opened = await client.stories.open_story(story_id)
        assert opened.image == image and opened.seen
    finally:
        await client.close()
        server.close()
