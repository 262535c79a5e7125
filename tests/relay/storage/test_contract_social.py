"""Storage contract: profiles, follows, posts, comments and reactions (records are
opaque bytes to the store: the handlers verify them)."""

from __future__ import annotations

import os

from tenchat.relay.storage import Store
from tests.support.wsclient import async_test

from .conftest import Clock, StoreOpener, refused, uid


@async_test
async def test_profile_keeps_the_newest(store: Store) -> None:
    alice = uid()
    assert await store.profile(alice) is None
    assert await store.set_profile(alice, b"v2", 2, False) == b"v2"
    assert await store.set_profile(alice, b"v1", 1, False) == b"v2"  # older: ignored
    assert await store.set_profile(alice, b"v3", 3, True) == b"v3"
    assert await store.profile(alice) == b"v3"


@async_test
async def test_follows_public_and_private(store: Store, clock: Clock) -> None:
    alice, bob, carol = uid(), uid(), uid()
    await store.set_profile(bob, b"bob", 1, True)  # private
    assert await store.follow(alice, carol, b"f-ac") == "following"
    clock.now += 1  # pages are oldest first
    assert await store.follow(alice, bob, b"f-ab") == "requested"
    assert await store.follow(alice, bob, b"f-ab") == "requested"  # unchanged
    assert await store.follow_page(bob, "requests", 0, 10) == [(b"f-ab", None)]
    assert await store.follow_page(bob, "followers", 0, 10) == []
    assert await store.followers(bob) == []  # a request is no follow (no story_new)
    assert await store.followers(carol) == [alice]
    await store.approve(bob, alice, b"ok")
    assert await store.follow_page(bob, "followers", 0, 10) == [(b"f-ab", b"ok")]
    assert await store.followers(bob) == [alice]
    assert await store.follow(alice, bob, b"f-ab") == "following"
    assert [r for r, _ in await store.follow_page(alice, "following", 0, 10)] == [
        b"f-ac", b"f-ab"]
    assert len(await store.follow_page(alice, "following", 1, 10)) == 1
    await refused(store.approve(bob, carol, b"ok"), "not_found")
    assert await store.unfollow(alice, carol) is True
    assert await store.unfollow(alice, carol) is False
    assert await store.followers(carol) == []
    assert [r for r, _ in await store.follow_page(alice, "following", 0, 10)] == [b"f-ab"]


@async_test
async def test_posts_and_feed(store: Store) -> None:
    alice, bob, carol = uid(), uid(), uid()
    ids = [os.urandom(16) for _ in range(3)]
    for i, post in enumerate(ids):
        await store.put_post(alice, post, b"a%d" % i, True)
    await store.put_post(alice, ids[0], b"a0", True)  # the same again: fine
    await refused(store.put_post(alice, ids[0], b"other", True), "forbidden")
    await store.put_post(carol, os.urandom(16), b"c0", True)
    assert await store.feed_page(bob, [alice], None, 10) == [b"a2", b"a1", b"a0"]
    assert await store.feed_page(bob, [alice], ids[2], 1) == [b"a1"]
    assert await store.feed_page(bob, [alice], os.urandom(16), 10) == []  # unknown before
    assert await store.feed_page(bob, [], None, 10) == []
    assert await store.feed_page(bob, None, None, 10) == []  # follows no one
    await store.follow(bob, alice, b"f")
    await store.put_post(bob, os.urandom(16), b"b0", True)
    assert await store.feed_page(bob, None, None, 10) == [b"b0", b"a2", b"a1", b"a0"]
    await store.set_profile(carol, b"carol", 1, True)
    await refused(store.put_post(carol, os.urandom(16), b"public", True), "forbidden")
    await store.put_post(carol, os.urandom(16), b"sealed", False)


@async_test
async def test_comments_reactions_and_extras(make_store: StoreOpener) -> None:
    async with make_store(reactions_max=2) as store:
        alice, bob = uid(), uid()
        post, other = os.urandom(16), os.urandom(16)
        await store.put_post(alice, post, b"p", True)
        await refused(store.put_comment(post, bob, os.urandom(16), b"c"), "not_found")
        c1, c2 = os.urandom(16), os.urandom(16)
        await store.put_comment(post, alice, c1, b"c1")
        await store.put_comment(post, alice, c2, b"c2")
        await store.put_comment(post, alice, c2, b"c2")  # the same again: fine
        await refused(store.put_comment(post, alice, c2, b"x"), "forbidden")
        assert await store.comment_page(post, None, 10) == [b"c2", b"c1"]
        assert await store.comment_page(post, c2, 10) == [b"c1"]
        await store.put_reaction(post, alice, bob, "👍", 10, False, b"r")
        await store.put_reaction(post, alice, bob, "👍", 5, True, b"older removal")  # ignored
        await store.put_reaction(post, alice, bob, "🎉", 10, False, b"r")
        await refused(store.put_reaction(post, alice, bob, "😀", 10, False, b"r"),
                      "too_many_reactions")
        await store.put_reaction(post, alice, alice, "👍", 10, False, b"r")
        assert await store.post_extras([post, other]) == [(2, {"👍": 2, "🎉": 1}), (0, {})]
        await store.put_reaction(post, alice, bob, "🎉", 11, True, b"removed")
        assert await store.post_extras([post]) == [(2, {"👍": 2})]
        await refused(store.put_reaction(other, alice, bob, "👍", 1, False, b"r"), "not_found")
        assert await store.post_extras([]) == []
