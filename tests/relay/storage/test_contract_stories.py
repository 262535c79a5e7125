"""Storage contract: stories expire, never show once expired, and take their image along."""

from __future__ import annotations

import os

from tenchat.common.stories import STORY_TTL_MS
from tenchat.relay.storage import Store
from tests.support.wsclient import async_test

from .conftest import Clock, refused

HOUR = 3600 * 1000



@async_test
async def test_stories_expire(store: Store, clock: Clock) -> None:
    alice, bob = os.urandom(32), os.urandom(32)
    s1, s2 = os.urandom(16), os.urandom(16)
    assert await store.put_story(alice, s1, clock.now + HOUR, None, b"s1") is True  # new
    assert await store.put_story(alice, s2, clock.now + 2 * HOUR, None, b"s2") is True
    # the same again: ok, and not new (its followers heard of it the first time)
    assert await store.put_story(alice, s1, clock.now + HOUR, None, b"s1") is False
    await refused(store.put_story(alice, s1, clock.now + HOUR, None, b"x"), "forbidden")
    await refused(store.put_story(alice, os.urandom(16), clock.now, None, b"x"), "expired")
    await refused(store.put_story(alice, os.urandom(16), clock.now + STORY_TTL_MS + 11 * 60_000,
                                  None, b"x"), "expired")
    assert await store.story_page(bob, [alice], 10) == [b"s2", b"s1"]
    assert await store.story_page(bob, None, 10) == []  # follows no one
    await store.follow(bob, alice, b"f")
    assert await store.story_page(bob, None, 1) == [b"s2"]
    clock.now += HOUR
    assert await store.story_page(bob, [alice], 10) == [b"s2"]  # before any sweep
    swept = await store.sweep_stories(clock.now, 100)
    assert (swept.stories, swept.blobs) == (1, [])


@async_test
async def test_a_story_image_expires_with_the_story(store: Store, clock: Clock) -> None:
    alice, blob = os.urandom(32), os.urandom(32)
    await refused(store.put_story(alice, os.urandom(16), clock.now + HOUR, blob, b"x"),
                  "not_found")  # not a stored blob
    await store.blob_begin(alice, blob, 10, 1000)
    await store.blob_commit(alice, blob, 10)
    await refused(store.put_story(os.urandom(32), os.urandom(16), clock.now + HOUR, blob,
                                  b"x"), "not_found")  # someone else's blob
    await store.put_story(alice, os.urandom(16), clock.now + HOUR, blob, b"one")
    await store.put_story(alice, os.urandom(16), clock.now + 2 * HOUR, blob, b"two")
    clock.now += HOUR
    assert await store.blob_size(blob) == 10  # the later story still uses it
    clock.now += HOUR
    assert await store.blob_size(blob) is None  # gone for readers before the sweep
    swept = await store.sweep_stories(clock.now, 100)
    assert (swept.stories, swept.blobs, swept.rows) == (2, [blob], 2)
    assert (await store.stats())["blobs"] == 0
