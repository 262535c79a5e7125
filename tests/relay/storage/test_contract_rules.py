"""The relay's Store interface (relay/storage/interface.py: ``Store``), rule by rule, through its
public methods only: what every storage backend must do. The ``open_store`` fixture is
parametrised over the backends (SQLite in tmp_path today); a new backend adds a param
and runs every test here.

Records are opaque bytes to a store (handlers verify them before), so the tests use
labelled bytes; ``now`` is a clock the test moves.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tenchat.common.errors import ProtocolError
from tenchat.common.frames import OneTimePrekey, SignedPrekey
from tenchat.relay.storage import AuditEntry, Store

pytestmark = pytest.mark.asyncio

OpenStore = Callable[..., Awaitable[Store]]
NOW = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def open_store(backend: Callable[..., Store], tmp_path: Path,
                     clock: Clock) -> AsyncIterator[OpenStore]:
    """``await open_store(**limits)``: an open store of the backend under test (limits as
    SQLiteStore takes them), closed after the test; call again to reopen the same data."""
    opened: list[Store] = []

    async def open_(**settings: Any) -> Store:
        store = backend(tmp_path, clock=clock, **settings)  # every backend (conftest.py)
        await store.open()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest_asyncio.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()


def user() -> bytes:
    return os.urandom(32)


async def code(fut: Awaitable[Any]) -> str:
    with pytest.raises(ProtocolError) as err:
        await fut
    return err.value.code


# --- identities ---------------------------------------------------------------------------


async def test_a_handle_is_held_by_one_identity_and_an_identity_holds_one(store: Store) -> None:
    alice, bob = user(), user()
    assert not await store.user_exists(alice)
    rec = await store.register(alice, "alice", b"sig-a")
    assert (rec.handle, rec.user) == ("alice", alice) and await store.user_exists(alice)
    assert await code(store.register(bob, "alice", b"sig-b")) == "handle_taken"
    assert await code(store.register(alice, "alice2", b"sig")) == "forbidden"
    assert (await store.handle_by_name("alice")) == rec == await store.handle_by_user(alice)
    assert await store.handle_by_name("bob") is None and await store.handle_by_user(bob) is None


async def test_each_one_time_prekey_is_handed_out_once(open_store: OpenStore) -> None:
    store = await open_store(otk_max=3)
    alice = user()
    assert await store.take_bundle(alice) is None  # no signed prekey: no bundle
    spk = SignedPrekey(key_id=1, pub=os.urandom(32), sig=os.urandom(64))
    otks = [OneTimePrekey(key_id=i, pub=os.urandom(32)) for i in range(5)]
    assert await store.publish_prekeys(alice, spk, otks) == 3  # otk_max keeps 3
    assert await store.user_exists(alice)
    without = await store.take_bundle(alice, with_otk=False)
    assert without is not None and without.otk is None and without.otk_count == 3
    taken = [await store.take_bundle(alice) for _ in range(4)]
    ids = [b.otk.key_id for b in taken if b is not None and b.otk is not None]
    assert len(ids) == 3 == len(set(ids))
    assert taken[-1] is not None and taken[-1].otk is None and taken[-1].spk == spk
    assert await store.otk_count(alice) == 0


# --- the message queue ----------------------------------------------------------------------


async def test_a_retried_send_gets_the_original_and_acks_delete_ones_own_only(
        store: Store) -> None:
    alice, bob, carol = user(), user(), user()
    msg = os.urandom(16)
    first = await store.enqueue(bob, alice, msg, b"hi", conv=True)
    again = await store.enqueue(bob, alice, msg, b"hi")
    assert again == first
    second = await store.enqueue(bob, alice, os.urandom(16), b"there")
    assert [(m.seq, m.body) for m in await store.pending(bob, 0, 10)] == [
        (first.seq, b"hi"), (second.seq, b"there")]
    assert [m.body for m in await store.pending(bob, first.seq, 10)] == [b"there"]
    carols = await store.enqueue(carol, alice, os.urandom(16), b"c")
    assert await code(store.ack(bob, [first.seq, carols.seq])) == "forbidden"
    assert len(await store.pending(bob, 0, 10)) == 2  # nothing deleted
    await store.ack(bob, [first.seq, 999_999])  # an unknown seq is ignored
    assert [m.body for m in await store.pending(bob, 0, 10)] == [b"there"]
    assert await store.contacts_of([alice, carol], bob) == {alice}  # alice wrote, carol not


async def test_expired_messages_are_never_delivered_and_swept(store: Store,
                                                               clock: Clock) -> None:
    alice, bob = user(), user()
    await store.enqueue(bob, alice, os.urandom(16), b"soon", expires_at=NOW + 1000)
    await store.enqueue(bob, alice, os.urandom(16), b"kept")
    clock.now = NOW + 1000
    assert [m.body for m in await store.pending(bob, 0, 10)] == [b"kept"]
    assert await store.sweep(clock.now, 100) == 1
    assert await store.sweep(clock.now, 100) == 0
    assert (await store.stats())["messages"] == 1


async def test_a_queue_is_bounded_and_one_sender_holds_only_its_share(
        open_store: OpenStore) -> None:
    store = await open_store(queue_max=4, queue_share=50)
    bob, alice, carol, dave = user(), user(), user(), user()
    for _ in range(2):
        await store.enqueue(bob, alice, os.urandom(16), b"a")
    assert await code(store.enqueue(bob, alice, os.urandom(16), b"a")) == "queue_share"
    for _ in range(2):
        await store.enqueue(bob, carol, os.urandom(16), b"c")
    assert await code(store.enqueue(bob, dave, os.urandom(16), b"d")) == "queue_full"
    await store.ack(bob, [m.seq for m in await store.pending(bob, 0, 1)])
    await store.enqueue(bob, dave, os.urandom(16), b"d")  # room again


async def test_queue_bytes_are_bounded_too(open_store: OpenStore) -> None:
    store = await open_store(queue_bytes_max=100)
    bob, alice = user(), user()
    await store.enqueue(bob, alice, os.urandom(16), b"x" * 60)
    assert await code(store.enqueue(bob, alice, os.urandom(16), b"x" * 60)) == "queue_full"


async def test_a_blocked_senders_messages_are_answered_but_never_queued(
        store: Store) -> None:
    bob, mallory = user(), user()
    await store.set_block(bob, mallory, True)
    assert await store.is_blocked(bob, mallory) and not await store.is_blocked(mallory, bob)
    stored = await store.enqueue(bob, mallory, os.urandom(16), b"spam", conv=True)
    assert stored.seq > 0
    assert await store.pending(bob, 0, 10) == []
    assert await store.contacts_of([mallory], bob) == set()
    await store.set_block(bob, mallory, False)
    await store.enqueue(bob, mallory, os.urandom(16), b"sorry")
    assert [m.body for m in await store.pending(bob, 0, 10)] == [b"sorry"]


async def test_privacy_setting_is_kept(store: Store) -> None:
    alice = user()
    assert not await store.hide_presence(alice)
    await store.set_privacy(alice, True)
    assert await store.hide_presence(alice)


async def test_writes_queued_before_close_are_committed(open_store: OpenStore) -> None:
    store = await open_store()
    bob, alice = user(), user()
    futures = [store.enqueue(bob, alice, os.urandom(16), b"%d" % i) for i in range(5)]
    await store.close()
    assert all(f.done() and not f.exception() for f in futures)
    again = await open_store()
    assert [m.body for m in await again.pending(bob, 0, 10)] == [b"%d" % i for i in range(5)]


async def test_a_failing_write_fails_alone_and_the_rest_of_its_batch_commits(
        store: Store) -> None:
    bob, alice = user(), user()

    def broken(self: object, tx: object) -> None:
        raise RuntimeError("a bug in an operation")

    # Queued together (a write declared with @write is queued through _submit): the
    # writer commits them as one transaction, then retries them one by one.
    before = store.enqueue(bob, alice, os.urandom(16), b"before")
    bad = store._submit(broken, (), {})  # type: ignore[attr-defined]
    after = store.enqueue(bob, alice, os.urandom(16), b"after")
    results = await asyncio.gather(before, bad, after, return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert [m.body for m in await store.pending(bob, 0, 10)] == [b"before", b"after"]
    await store.probe()  # and the writer goes on


# --- blobs -----------------------------------------------------------------------------------


async def test_blob_uploads_count_against_the_quota_until_committed_or_aborted(
        store: Store) -> None:
    alice, bob = user(), user()
    one, two = os.urandom(32), os.urandom(32)
    begun = await store.blob_begin(alice, one, 600, quota=1000)
    assert (begun.stored, begun.new, begun.size) == (False, True, 600)
    assert (await store.blob_begin(alice, one, 600, quota=1000)).new is False  # resumed
    assert await code(store.blob_begin(alice, one, 700, quota=1000)) == "protocol"
    assert await code(store.blob_begin(alice, two, 500, quota=1000)) == "quota_exceeded"
    assert await store.blob_upload(alice, one) == 600 and await store.blob_size(one) is None
    await store.blob_commit(alice, one, 600)
    assert await store.blob_size(one) == 600 and await store.blob_upload(alice, one) is None
    assert (await store.blob_begin(bob, one, 600, quota=10)).stored  # anyone's: stored
    await store.blob_begin(alice, two, 300, quota=1000)
    await store.blob_abort(alice, two)
    assert await store.blob_upload(alice, two) is None
    stats = await store.stats()
    assert (stats["blobs"], stats["blob_bytes"], stats["uploads"]) == (1, 600, 0)


# --- social ----------------------------------------------------------------------------------


async def test_profiles_keep_the_newest_record(store: Store) -> None:
    alice = user()
    assert await store.profile(alice) is None
    assert await store.set_profile(alice, b"v2", 2, False) == b"v2"
    assert await store.set_profile(alice, b"v1", 1, False) == b"v2"
    assert await store.profile(alice) == b"v2"


async def test_follows_of_public_and_private_accounts(store: Store) -> None:
    alice, bob, carol = user(), user(), user()
    await store.set_profile(alice, b"private", 1, True)
    assert await store.follow(bob, alice, b"f-bob") == "requested"
    assert await store.follow(bob, carol, b"f-bob-carol") == "following"
    assert await code(store.approve(alice, carol, b"a")) == "not_found"
    assert await store.follow_page(alice, "requests", 0, 10) == [(b"f-bob", None)]
    assert await store.follow_page(alice, "followers", 0, 10) == []
    await store.approve(alice, bob, b"a-bob")
    assert await store.follow_page(alice, "followers", 0, 10) == [(b"f-bob", b"a-bob")]
    following = await store.follow_page(bob, "following", 0, 10)  # (one clock: ties)
    assert sorted(r for r, _ in following) == [b"f-bob", b"f-bob-carol"]
    assert await store.follow_page(bob, "following", 1, 10) == following[1:]  # by offset
    assert await store.unfollow(bob, carol) is True
    assert await store.unfollow(bob, carol) is False


async def test_posts_feed_comments_and_reactions(open_store: OpenStore) -> None:
    store = await open_store(reactions_max=2)
    alice, bob, carol = user(), user(), user()
    posts = [os.urandom(16) for _ in range(3)]
    for i, post in enumerate(posts):
        await store.put_post(alice, post, b"post%d" % i, True)
    await store.put_post(alice, posts[0], b"post0", True)  # the same record again: fine
    assert await code(store.put_post(alice, posts[0], b"other", True)) == "forbidden"
    await store.put_post(carol, os.urandom(16), b"carol's", True)
    await store.follow(bob, alice, b"f")
    assert await store.feed_page(bob, None, None, 10) == [b"post2", b"post1", b"post0"]
    assert await store.feed_page(bob, None, posts[2], 1) == [b"post1"]
    assert await store.feed_page(bob, [carol], None, 10) == [b"carol's"]
    # a private account posts followers-only only
    await store.set_profile(carol, b"p", 1, True)
    assert await code(store.put_post(carol, os.urandom(16), b"public", True)) == "forbidden"

    comments = [os.urandom(16) for _ in range(2)]
    assert await code(store.put_comment(os.urandom(16), alice, comments[0], b"c")) == \
        "not_found"
    assert await code(store.put_comment(posts[0], bob, comments[0], b"c")) == "not_found"
    for i, comment in enumerate(comments):
        await store.put_comment(posts[0], alice, comment, b"c%d" % i)
    assert await code(store.put_comment(posts[0], alice, comments[0], b"x")) == "forbidden"
    assert await store.comment_page(posts[0], None, 10) == [b"c1", b"c0"]
    assert await store.comment_page(posts[0], comments[1], 10) == [b"c0"]

    await store.put_reaction(posts[0], alice, bob, "👍", 5, False, b"r")
    await store.put_reaction(posts[0], alice, bob, "👍", 4, True, b"older removal")  # ignored
    await store.put_reaction(posts[0], alice, bob, "🎉", 5, False, b"r2")
    assert await code(store.put_reaction(posts[0], alice, bob, "🔥", 5, False, b"r3")) == \
        "too_many_reactions"
    assert await code(store.put_reaction(posts[1], bob, bob, "👍", 5, False, b"r")) == \
        "not_found"
    extras = await store.post_extras([posts[0], posts[1]])
    assert extras == [(2, {"👍": 1, "🎉": 1}), (0, {})]
    await store.put_reaction(posts[0], alice, bob, "👍", 6, True, b"removed")
    assert (await store.post_extras([posts[0]]))[0][1] == {"🎉": 1}


async def test_stories_expire_and_bind_their_blob(store: Store, clock: Clock) -> None:
    alice, bob = user(), user()
    image = os.urandom(32)
    story = os.urandom(16)
    assert await code(store.put_story(alice, story, NOW - 1, None, b"old")) == "expired"
    assert await code(store.put_story(alice, story, NOW + 1000, image, b"s")) == "not_found"
    await store.blob_begin(alice, image, 10, quota=100)
    await store.blob_commit(alice, image, 10)
    await store.put_story(alice, story, NOW + 1000, image, b"s1")
    await store.put_story(alice, story, NOW + 1000, image, b"s1")  # the same: fine
    assert await code(store.put_story(alice, story, NOW + 1000, None, b"s2")) == "forbidden"
    await store.follow(bob, alice, b"f")
    assert await store.story_page(bob, None, 10) == [b"s1"]
    assert await store.story_page(bob, [alice], 10) == [b"s1"]
    clock.now = NOW + 1000
    assert await store.story_page(bob, None, 10) == []
    swept = await store.sweep_stories(clock.now, 100)
    assert swept.stories == 1 and swept.blobs == [image]  # the image went with it
    assert await store.blob_size(image) is None


async def test_a_wallet_is_linked_to_one_identity_and_the_newest_binding_wins(
        store: Store) -> None:
    alice, bob = user(), user()
    address = "0x" + "ab" * 20
    assert await store.wallet_owner(address) is None
    await store.put_wallet_link(address, alice, 10, b"link-a")
    assert await store.wallet_owner(address) == alice
    assert await code(store.put_wallet_link(address, bob, 5, b"older")) == "forbidden"
    await store.put_wallet_link(address, bob, 20, b"link-b")  # moved to bob
    assert await store.wallet_owner(address) == bob
    assert await store.wallet_links(alice) == [] and await store.wallet_links(bob) == [b"link-b"]
    assert await store.wallet_unlink(alice, address) is False
    assert await store.wallet_unlink(bob, address) is True
    assert await store.wallet_owner(address) is None


async def test_audit_rows_count_repeats(store: Store) -> None:
    row = await store.audit_insert(AuditEntry(NOW, b"actor", "ban", b"target", "", "127.0.0.1"))
    await store.audit_add(row, 4)
    assert [e.count for e in await store.audit_log(10) if e.id == row] == [5]
