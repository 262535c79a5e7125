"""The relay's protocol rules in this process (tests/support/inproc.py): each request a
client can get wrong is answered with its documented error code (common/errors.py,
docs/protocol.md), changes nothing, and the connection keeps serving — plus the answers
of the requests done right. Real server, handlers, sessions, hub and SQLite store; no
socket, no process (the TCP side is in the slow tests: test_relay_*.py)."""

from __future__ import annotations

import os
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from nacl.signing import SigningKey

from tenchat.common import frames, identity, social
from tenchat.common.crypto import media
from tenchat.common.frames import (
    Ack,
    ApproveReq,
    Auth,
    Authed,
    BlobBegin,
    BlobChunk,
    BlobData,
    BlobGet,
    BlobStatus,
    Block,
    Bundle,
    CommentItems,
    CommentPut,
    CommentsReq,
    Deliver,
    Error,
    Feed,
    FeedItems,
    Fetch,
    FetchBundle,
    FollowItems,
    FollowList,
    FollowReq,
    FollowState,
    GroupAck,
    GroupChangeReq,
    GroupDeliver,
    GroupHistory,
    GroupInfo,
    GroupList,
    Groups,
    GroupSend,
    GroupStored,
    HandleInfo,
    Hello,
    Lookup,
    Messages,
    Ok,
    OneTimePrekey,
    PostExtras,
    PostExtrasReq,
    PostPut,
    PrekeysLow,
    PrekeyStatus,
    Presence,
    PresenceState,
    Privacy,
    ProfileGet,
    ProfileInfo,
    ProfileSet,
    PublishPrekeys,
    ReactPut,
    Register,
    RemoveFollower,
    Send,
    SignedPrekey,
    Stored,
    Subscribe,
    Synced,
    Unfollow,
    Watch,
    Welcome,
    Whois,
)
from tests.support.groups import TestGroup
from tests.support.inproc import InProcRelay, Peer, StartRelay

pytestmark = pytest.mark.asyncio


async def refused(peer: Peer, frame_type: type[msgspec.Struct], **fields: Any) -> str:
    """The error code the relay answers ``frame_type(**fields)`` with."""
    reply = await peer.call(frame_type, **fields)
    assert isinstance(reply, Error), reply
    return reply.error


def signer(peer: Peer) -> Any:
    key = peer.key
    assert key is not None
    return lambda m: key.sign(m).signature


async def register(peer: Peer, handle: str, pow: bytes = b"") -> msgspec.Struct:
    assert peer.key is not None
    canonical = identity.normalize_handle(handle)
    sig = peer.key.sign(identity.handle_message(canonical, peer.user)).signature
    return await peer.call(Register, handle=handle, sig=sig, pow=pow)


async def logins(relay: InProcRelay, count: int) -> list[Peer]:
    return [await relay.login() for _ in range(count)]


@pytest_asyncio.fixture
async def inproc(relay_with: StartRelay) -> InProcRelay:
    """An in-process relay with the default settings."""
    return await relay_with()


# --- connection set-up ---------------------------------------------------------------------


async def test_hello_then_auth_in_order_and_once_each(inproc: InProcRelay) -> None:
    key = SigningKey.generate()
    user = bytes(key.verify_key)
    peer = inproc.connect()
    origin = identity.relay_origin(inproc.url)
    assert await refused(peer, Auth, user=user, sig=bytes(64), origin=origin) == "protocol"
    assert await refused(peer, Lookup, handle="alice") == "unauthenticated"
    assert await refused(peer, Hello, versions=[frames.PROTOCOL_VERSION + 99]) == \
        "unsupported_version"
    welcome = await peer.call(Hello, versions=[frames.PROTOCOL_VERSION])
    assert isinstance(welcome, Welcome) and welcome.pow == 0  # loopback is limit-exempt
    assert await refused(peer, Hello, versions=[frames.PROTOCOL_VERSION]) == "protocol"
    good = key.sign(identity.auth_message(origin, welcome.challenge)).signature
    # signed for another relay's URL: a relay in the middle replaying a sign-in
    other = key.sign(identity.auth_message("ws://elsewhere", welcome.challenge)).signature
    assert await refused(peer, Auth, user=user, sig=other, origin="ws://elsewhere") == \
        "auth_failed"
    assert await refused(peer, Auth, user=user, sig=good[:-1] + bytes([good[-1] ^ 1]),
                         origin=origin) == "auth_failed"
    authed = await peer.call(Auth, user=user, sig=good, origin=origin)
    assert isinstance(authed, Authed) and authed.handle is None and authed.otk_count == 0
    assert await refused(peer, Auth, user=user, sig=good, origin=origin) == "protocol"


async def test_a_frame_that_does_not_decode_is_answered_and_the_connection_serves_on(
        inproc: InProcRelay) -> None:
    peer = await inproc.login()
    peer.send_raw(msgspec.msgpack.encode({"t": "no_such_frame", "id": 41}))
    peer.send_raw(msgspec.msgpack.encode({"t": "send", "id": 42}))  # fields missing
    peer.send_raw(b"\xc1")
    errors = [await peer.wait_for(lambda f, i=i: getattr(f, "id", None) == i)
              for i in (41, 42)]
    assert [e.error for e in errors] == ["unknown_type", "malformed"]
    assert isinstance(await peer.call(GroupList), Groups)  # still serving


# --- handles -------------------------------------------------------------------------------


async def test_register_lookup_and_whois(inproc: InProcRelay) -> None:
    alice, bob = await inproc.login(), await inproc.login()
    assert await refused(alice, Register, handle="alice", sig=bytes(64)) == "bad_signature"
    assert await refused(alice, Register, handle="1nvalid", sig=bytes(64)) == "bad_handle"
    info = await register(alice, "Alice")
    assert isinstance(info, HandleInfo) and info.handle == "alice" and info.user == alice.user
    assert isinstance(await register(alice, "alice"), HandleInfo)  # again: no change
    assert await refused(bob, Register, handle="alice", sig=bob.key.sign(  # type: ignore[union-attr]
        identity.handle_message("alice", bob.user)).signature) == "handle_taken"
    found = await bob.call(Lookup, handle="@ALICE")
    assert isinstance(found, HandleInfo) and found.user == alice.user
    assert identity.verify_signature(alice.user, identity.handle_message("alice", alice.user),
                                     found.sig)  # a client can check the claim itself
    assert await refused(bob, Lookup, handle="nobody") == "not_found"
    assert (await bob.call(Whois, user=alice.user)).handle == "alice"  # type: ignore[attr-defined]
    assert await refused(alice, Whois, user=bob.user) == "not_found"


async def test_reserved_handles_and_the_registration_proof_of_work(
        relay_with: StartRelay) -> None:
    relay = await relay_with(limit_exempt=(), register_pow=6, reserved_handles=("support",))
    peer = relay.connect()
    key = SigningKey.generate()
    await peer.login(key)
    assert peer.welcome is not None and peer.welcome.pow == 6
    assert await refused(peer, Register, handle="support", sig=key.sign(
        identity.handle_message("support", peer.user)).signature) == "handle_reserved"
    assert await refused(peer, Register, handle="carol", sig=key.sign(
        identity.handle_message("carol", peer.user)).signature) == "pow_required"
    challenge = peer.welcome.challenge
    for n in range(1 << 16):  # a nonce that fails (an empty one never counts)
        wrong = n.to_bytes(8, "big")
        if not identity.pow_ok(challenge, peer.user, "carol", wrong, 6):
            break
    assert await refused(peer, Register, handle="carol", sig=key.sign(
        identity.handle_message("carol", peer.user)).signature, pow=wrong) == "pow_required"
    nonce = identity.solve_pow(challenge, peer.user, "carol", 6)
    assert isinstance(await register(peer, "carol", nonce), HandleInfo)


async def test_new_identities_and_registrations_per_address_are_rate_limited(
        relay_with: StartRelay) -> None:
    relay = await relay_with(limit_exempt=(), ident_rate=1, register_pow=0, handle_rate=1)
    first = await relay.login()
    assert isinstance(await register(first, "first"), HandleInfo)
    second = relay.connect()
    with pytest.raises(AssertionError, match="rate_limited"):
        await second.login(SigningKey.generate())  # a second new identity within the hour
    again = await relay.login(first.key)  # one the relay knows is no new identity
    error = await refused(again, Register, handle="second", sig=first.key.sign(  # type: ignore[union-attr]
        identity.handle_message("second", first.user)).signature)
    assert error == "rate_limited"
    last = again.frames[-1]
    assert isinstance(last, Error) and last.retry_after > 0


# --- prekeys ---------------------------------------------------------------------------------


async def test_prekeys_are_published_for_oneself_and_signed(inproc: InProcRelay) -> None:
    alice, bob = await inproc.login(), await inproc.login(publish=False)
    pub = os.urandom(32)
    spk = SignedPrekey(key_id=2, pub=pub, sig=alice.key.sign(  # type: ignore[union-attr]
        identity.signed_prekey_message(pub)).signature)
    assert await refused(alice, PublishPrekeys, user=bob.user, spk=spk, otks=[]) == "forbidden"
    forged = SignedPrekey(key_id=2, pub=os.urandom(32), sig=spk.sig)
    assert await refused(alice, PublishPrekeys, user=alice.user, spk=forged,
                         otks=[]) == "bad_signature"
    assert await refused(alice, FetchBundle, user=bob.user) == "not_found"  # none published
    otks = [OneTimePrekey(key_id=i, pub=os.urandom(32)) for i in range(2)]
    status = await alice.call(PublishPrekeys, user=alice.user, spk=spk, otks=otks)
    assert isinstance(status, PrekeyStatus) and status.otk_count == 2


async def test_a_bundle_hands_out_each_one_time_prekey_once_and_warns_when_low(
        inproc: InProcRelay) -> None:
    alice, bob = await inproc.login(), await inproc.login()
    otks = [OneTimePrekey(key_id=i, pub=os.urandom(32)) for i in range(2)]
    await alice.call(PublishPrekeys, user=alice.user, spk=None, otks=otks)
    taken = [await bob.call(FetchBundle, user=alice.user) for _ in range(3)]
    assert all(isinstance(b, Bundle) for b in taken)
    got = [b.otk.key_id for b in taken if b.otk is not None]  # type: ignore[attr-defined]
    assert sorted(got) == [0, 1]  # each once; the third bundle has none (X3DH without one)
    low = await alice.wait_for(lambda f: isinstance(f, PrekeysLow))
    assert low.otk_count < inproc.config.otk_low


async def test_bundles_fetched_per_identity_are_rate_limited(relay_with: StartRelay) -> None:
    relay = await relay_with(bundle_rate=1, bundle_burst=1)
    alice, bob = await relay.login(), await relay.login()
    answers = [await bob.call(FetchBundle, user=alice.user) for _ in range(3)]
    assert isinstance(answers[0], Bundle)
    assert isinstance(answers[-1], Error) and answers[-1].error == "rate_limited"


# --- messages ---------------------------------------------------------------------------------


async def test_a_message_to_an_unknown_identity_is_not_found(inproc: InProcRelay) -> None:
    alice = await inproc.login()
    assert await refused(alice, Send, to=os.urandom(32), msg=os.urandom(16),
                         body=b"x") == "not_found"


async def test_ones_own_queue_only_is_fetched_page_by_page(inproc: InProcRelay) -> None:
    alice, bob = await inproc.login(), await inproc.login()
    for i in range(3):
        assert isinstance(await alice.call(Send, to=bob.user, msg=os.urandom(16),
                                           body=b"%d" % i), Stored)
    assert await refused(alice, Fetch, user=bob.user, after=0, limit=10) == "forbidden"
    page = await bob.call(Fetch, user=bob.user, after=0, limit=2)
    assert isinstance(page, Messages) and page.more
    assert [m.body for m in page.items] == [b"0", b"1"]
    rest = await bob.call(Fetch, user=bob.user, after=page.items[-1].seq, limit=2)
    assert [m.body for m in rest.items] == [b"2"] and not rest.more  # type: ignore[attr-defined]
    assert isinstance(await bob.call(Ack, seqs=[m.seq for m in page.items]), Ok)
    left = await bob.call(Fetch, user=bob.user, after=0, limit=10)
    assert [m.body for m in left.items] == [b"2"]  # type: ignore[attr-defined]


async def test_ephemeral_messages_reach_only_live_recipients_and_never_a_blocker(
        inproc: InProcRelay) -> None:
    alice, bob, mallory = await logins(inproc, 3)
    await bob.call(Subscribe)
    await bob.wait_for(lambda f: isinstance(f, Synced))
    assert isinstance(await bob.call(Block, user=mallory.user, blocked=True), Ok)
    # answered the same as any, so mallory can't tell she is blocked ...
    assert isinstance(await mallory.call(Send, to=bob.user, msg=os.urandom(16), body=b"m",
                                         eph=True), Ok)
    # ... and alice's, sent after mallory's was answered, is the first bob gets
    assert isinstance(await alice.call(Send, to=bob.user, msg=os.urandom(16), body=b"a",
                                       eph=True), Ok)
    push = await bob.wait_for(lambda f: isinstance(f, Deliver))
    assert push.sender == alice.user and push.body == b"a" and push.seq == 0
    stored = await bob.call(Fetch, user=bob.user, after=0, limit=10)
    assert stored.items == []  # type: ignore[attr-defined]  # an ephemeral one is never stored


async def _subscribed(peer: Peer) -> None:
    assert isinstance(await peer.call(Subscribe), Ok)
    await peer.wait_for(lambda f: isinstance(f, Synced))


async def test_presence_is_shown_to_contacts_only_and_follows_hiding_and_blocking(
        inproc: InProcRelay) -> None:
    alice, bob, carol = await logins(inproc, 3)
    for peer in (bob, carol):
        await _subscribed(peer)  # online: subscribed

    async def next_presence(action: Any) -> tuple[bytes, bool]:
        since = len(alice.frames)
        assert isinstance(await action, Ok | Stored)
        push = await alice.wait_for(lambda f: isinstance(f, Presence), since=since)
        return push.user, push.online

    seen = await alice.call(Watch, users=[bob.user, carol.user, bob.user])
    assert seen.online == []  # type: ignore[attr-defined]  # not contacts: always offline
    # bob writes to alice (a conversation message, not a receipt): from now on she may see him
    assert await next_presence(bob.call(Send, to=alice.user, msg=os.urandom(16),
                                        body=b"hi", conv=True)) == (bob.user, True)
    assert await next_presence(bob.call(Privacy, hide_presence=True)) == (bob.user, False)
    assert await next_presence(bob.call(Privacy, hide_presence=False)) == (bob.user, True)
    assert await next_presence(bob.call(Block, user=alice.user, blocked=True)) == \
        (bob.user, False)
    assert all(p.user != carol.user for p in alice.of(Presence))  # carol never wrote
    again = await alice.call(Watch, users=[bob.user, carol.user])
    assert again.online == []  # type: ignore[attr-defined]


# --- groups -----------------------------------------------------------------------------------


async def test_group_rules_at_the_relay(relay_with: StartRelay) -> None:
    relay = await relay_with(max_frame=4096)
    owner, bob, outsider = await logins(relay, 3)
    group = TestGroup()
    create = group.record(owner.key, "create", name="g", members=[bob.user])
    # a change signed by its actor but sent on someone else's connection
    assert await refused(bob, GroupChangeReq, record=create) == "forbidden"
    assert await refused(owner, GroupChangeReq, record=b"\x93bad") == "malformed"
    assert isinstance(await owner.call(GroupChangeReq, record=create), GroupStored)
    group.applied(create)
    for i in range(5):  # topics of ~1 KB: a page of history stops at max_frame
        record = group.record(owner.key, "meta", topic="t" * 900 + str(i))
        assert isinstance(await owner.call(GroupChangeReq, record=record), GroupStored)
        group.applied(record)
    history = await bob.call(GroupInfo, group=group.id, after_version=0)
    assert isinstance(history, GroupHistory) and history.more and history.version == 6
    assert history.records == group.records[:len(history.records)]
    assert 1 <= len(history.records) < 6
    assert await refused(outsider, GroupInfo, group=group.id, after_version=0) == "forbidden"
    assert await refused(outsider, GroupSend, group=group.id, msg=os.urandom(16), body=b"t",
                         eph=True) == "forbidden"
    sent = await bob.call(GroupSend, group=group.id, msg=os.urandom(16), body=b"x")
    assert isinstance(sent, GroupStored)
    assert isinstance(await bob.call(GroupAck, group=group.id, upto=sent.gseq), Ok)
    summary = await bob.call(GroupList)
    assert isinstance(summary, Groups)
    [mine] = summary.groups
    assert (mine.group, mine.role, mine.cursor, mine.last) == (group.id, "member", sent.gseq,
                                                               sent.gseq)
    assert (await outsider.call(GroupList)).groups == []  # type: ignore[attr-defined]


# --- blobs ------------------------------------------------------------------------------------


async def test_a_blob_uploads_in_order_resumes_and_reads_back(inproc: InProcRelay) -> None:
    alice, bob = await inproc.login(), await inproc.login()
    blob, _key = media.encrypt(os.urandom(3000))
    blob_id = media.blob_hash(blob)
    assert await refused(alice, BlobChunk, hash=blob_id, offset=0, data=blob) == "protocol"
    begun = await alice.call(BlobBegin, hash=blob_id, size=len(blob))
    assert isinstance(begun, BlobStatus) and begun.offset == 0
    first = await alice.call(BlobChunk, hash=blob_id, offset=0, data=blob[:1000])
    assert isinstance(first, BlobStatus) and first.offset == 1000
    assert await refused(alice, BlobChunk, hash=blob_id, offset=500,
                         data=blob[500:1000]) == "protocol"  # not where the relay is
    assert await refused(alice, BlobChunk, hash=blob_id, offset=1000,
                         data=blob[1000:] + b"!") == "protocol"  # past the announced size
    resumed = await alice.call(BlobBegin, hash=blob_id, size=len(blob))
    assert resumed.offset == 1000  # type: ignore[attr-defined]  # a reconnect resumes
    assert await refused(bob, BlobGet, hash=blob_id, offset=0, length=10) == "not_found"
    done = await alice.call(BlobChunk, hash=blob_id, offset=1000, data=blob[1000:])
    assert isinstance(done, BlobStatus) and done.offset == done.size == len(blob)
    again = await alice.call(BlobChunk, hash=blob_id, offset=1000, data=blob[1000:])
    assert again.offset == len(blob)  # type: ignore[attr-defined]  # a retried last chunk
    part = await bob.call(BlobGet, hash=blob_id, offset=100, length=200)
    assert isinstance(part, BlobData) and part.data == blob[100:300] and part.size == len(blob)
    assert await refused(bob, BlobGet, hash=blob_id, offset=len(blob) + 1,
                         length=1) == "malformed"
    stored = await bob.call(BlobBegin, hash=blob_id, size=len(blob))
    assert stored.offset == len(blob)  # type: ignore[attr-defined]  # stored: nothing to send


async def test_a_blob_that_does_not_hash_to_its_id_is_discarded(inproc: InProcRelay) -> None:
    alice = await inproc.login()
    data = os.urandom(100)
    claimed = media.blob_hash(b"something else")
    await alice.call(BlobBegin, hash=claimed, size=len(data))
    assert await refused(alice, BlobChunk, hash=claimed, offset=0,
                         data=data) == "hash_mismatch"
    assert await refused(alice, BlobGet, hash=claimed, offset=0, length=1) == "not_found"
    begun = await alice.call(BlobBegin, hash=claimed, size=len(data))
    assert begun.offset == 0  # type: ignore[attr-defined]  # starts over


async def test_blob_sizes_are_bounded_by_max_blob_and_the_quota(
        relay_with: StartRelay) -> None:
    relay = await relay_with(max_blob=4096, blob_quota=5000)
    alice = await relay.login()
    assert await refused(alice, BlobBegin, hash=os.urandom(32), size=4097) == "too_large"
    assert isinstance(await alice.call(BlobBegin, hash=os.urandom(32), size=4000), BlobStatus)
    assert await refused(alice, BlobBegin, hash=os.urandom(32),
                         size=2000) == "quota_exceeded"  # 4000 in progress + 2000 > 5000


# --- social ------------------------------------------------------------------------------------


async def test_profiles_are_set_for_oneself_and_read_by_anyone(inproc: InProcRelay) -> None:
    alice, bob = await inproc.login(), await inproc.login()
    assert await refused(bob, ProfileGet, user=alice.user) == "not_found"
    record = social.sign_profile(social.Profile(user=alice.user, updated_at=1,
                                                display_name="A"), signer(alice))
    assert await refused(bob, ProfileSet, record=social.sign_profile(
        social.Profile(user=alice.user, updated_at=1), signer(bob))) == "bad_signature"
    assert await refused(bob, ProfileSet, record=record) == "forbidden"
    newest = await alice.call(ProfileSet, record=record)
    assert isinstance(newest, ProfileInfo) and newest.record == record
    older = social.sign_profile(social.Profile(user=alice.user, updated_at=0,
                                               display_name="old"), signer(alice))
    kept = await alice.call(ProfileSet, record=older)  # an older record changes nothing
    assert isinstance(kept, ProfileInfo) and kept.record == record
    got = await bob.call(ProfileGet, user=alice.user)
    assert isinstance(got, ProfileInfo) and got.record == record


async def test_follows_approvals_and_their_lists(inproc: InProcRelay) -> None:
    alice, bob, carol = await logins(inproc, 3)

    def follow(peer: Peer, target: bytes) -> bytes:
        return social.sign_follow(social.Follow(follower=peer.user, target=target, at=1),
                                  signer(peer))

    assert await refused(bob, FollowReq, record=follow(bob, bob.user)) == "malformed"
    assert await refused(carol, FollowReq, record=follow(bob, alice.user)) == "forbidden"
    assert await refused(bob, FollowReq, record=follow(bob, os.urandom(32))) == "not_found"
    private = social.sign_profile(social.Profile(user=alice.user, updated_at=1, private=True),
                                  signer(alice))
    await alice.call(ProfileSet, record=private)
    state = await bob.call(FollowReq, record=follow(bob, alice.user))
    assert isinstance(state, FollowState) and state.state == "requested"
    assert await refused(carol, FollowList, user=alice.user, kind="requests", offset=0,
                         limit=10) == "forbidden"  # only alice sees who asks her
    asks = await alice.call(FollowList, user=alice.user, kind="requests", offset=0, limit=10)
    assert isinstance(asks, FollowItems) and [social.open_follow(i.follow).follower
                                              for i in asks.items] == [bob.user]
    approval = social.sign_approval(social.Approval(owner=alice.user, follower=bob.user, at=2),
                                    signer(alice))
    assert await refused(bob, ApproveReq, record=approval) == "forbidden"
    assert isinstance(await alice.call(ApproveReq, record=approval), Ok)
    followers = await carol.call(FollowList, user=alice.user, kind="followers", offset=0,
                                 limit=10)
    assert [i.approval for i in followers.items] == [approval]  # type: ignore[attr-defined]
    assert isinstance(await alice.call(RemoveFollower, user=bob.user), Ok)
    assert (await carol.call(FollowList, user=alice.user, kind="followers", offset=0,
                             limit=10)).items == []  # type: ignore[attr-defined]
    await carol.call(FollowReq, record=follow(carol, bob.user))  # bob's account is public
    assert isinstance(await carol.call(Unfollow, user=bob.user), Ok)
    assert (await carol.call(FollowList, user=carol.user, kind="following", offset=0,
                             limit=10)).items == []  # type: ignore[attr-defined]


async def test_posts_comments_and_reactions_are_authored_by_the_caller(
        inproc: InProcRelay) -> None:
    alice, bob = await inproc.login(), await inproc.login()
    post = social.Post(author=alice.user, id=os.urandom(16), created_at=1, text="hello")
    record = social.sign_post(post, signer(alice))
    assert await refused(bob, PostPut, record=record) == "forbidden"
    assert isinstance(await alice.call(PostPut, record=record), Ok)
    feed = await bob.call(Feed, authors=[alice.user], before=None, limit=10)
    assert isinstance(feed, FeedItems) and feed.records == [record]
    comment = social.sign_comment(social.Comment(
        author=bob.user, post_id=post.id, post_author=alice.user, id=os.urandom(16),
        created_at=2, text="nice"), signer(bob))
    assert await refused(alice, CommentPut, record=comment) == "forbidden"
    assert isinstance(await bob.call(CommentPut, record=comment), Ok)

    def reaction(emoji: str, removed: bool = False) -> bytes:
        return social.sign_reaction(social.Reaction(
            author=bob.user, post_id=post.id, post_author=alice.user, emoji=emoji,
            created_at=3, removed=removed), signer(bob))

    assert await refused(alice, ReactPut, record=reaction("👍")) == "forbidden"
    assert await refused(bob, ReactPut, record=reaction("ok")) == "bad_reaction"
    assert isinstance(await bob.call(ReactPut, record=reaction("👍")), Ok)
    extras = await alice.call(PostExtrasReq, post_ids=[post.id])
    assert isinstance(extras, PostExtras)
    assert (extras.items[0].comments, extras.items[0].reactions) == (1, {"👍": 1})
    assert isinstance(await bob.call(ReactPut, record=reaction("ok", removed=True)), Ok)
    page = await alice.call(CommentsReq, post_id=post.id, before=None, limit=10)
    assert isinstance(page, CommentItems) and page.records == [comment] and not page.more


async def test_typing_reaches_live_members_but_not_the_sender_and_is_stored_nowhere(
        inproc: InProcRelay) -> None:
    owner, bob, carol = await logins(inproc, 3)
    group = TestGroup()
    create = group.record(owner.key, "create", name="g", members=[bob.user, carol.user])
    assert isinstance(await owner.call(GroupChangeReq, record=create), GroupStored)
    for peer in (owner, bob, carol):
        await _subscribed(peer)
    typing = await bob.call(GroupSend, group=group.id, msg=os.urandom(16), body=b"...",
                            eph=True)
    assert isinstance(typing, Ok)
    for peer in (owner, carol):
        push = await peer.wait_for(lambda f: isinstance(f, GroupDeliver) and f.gseq == 0)
        assert (push.sender, push.body) == (bob.user, b"...")
    # stored nowhere: a real post after it is the next entry of the log
    post = await bob.call(GroupSend, group=group.id, msg=os.urandom(16), body=b"post")
    await carol.wait_for(lambda f: isinstance(f, GroupDeliver) and f.body == b"post")
    assert not any(isinstance(f, GroupDeliver) and f.gseq == 0 for f in bob.frames)
    summary = (await carol.call(GroupList)).groups[0]  # type: ignore[attr-defined]
    assert summary.last == post.gseq  # type: ignore[attr-defined]


async def test_a_removed_member_gets_no_more_posts(inproc: InProcRelay) -> None:
    owner, bob, carol = await logins(inproc, 3)
    group = TestGroup()
    for op, fields in (("create", {"name": "g", "members": [bob.user, carol.user]}),):
        record = group.record(owner.key, op, **fields)
        assert isinstance(await owner.call(GroupChangeReq, record=record), GroupStored)
        group.applied(record)
    await _subscribed(bob)
    await _subscribed(carol)
    remove = group.record(owner.key, "remove", members=[bob.user])
    assert isinstance(await owner.call(GroupChangeReq, record=remove), GroupStored)
    group.applied(remove)
    await owner.call(GroupSend, group=group.id, msg=os.urandom(16), body=b"after")
    await carol.wait_for(lambda f: isinstance(f, GroupDeliver) and f.body == b"after")
    await bob.wait_for(lambda f: isinstance(f, GroupDeliver) and f.change)  # his removal
    assert not any(isinstance(f, GroupDeliver) and f.body == b"after" for f in bob.frames)
    assert await refused(bob, GroupInfo, group=group.id, after_version=0) == "forbidden"


async def test_a_message_that_expired_before_its_push_is_not_pushed(
        inproc: InProcRelay) -> None:
    alice, bob = await logins(inproc, 2)
    await _subscribed(bob)
    gone = await alice.call(Send, to=bob.user, msg=os.urandom(16), body=b"gone",
                            expires_at=1)  # long past
    assert isinstance(gone, Stored)
    await alice.call(Send, to=bob.user, msg=os.urandom(16), body=b"kept",
                     expires_at=2**53)
    push = await bob.wait_for(lambda f: isinstance(f, Deliver))
    assert push.body == b"kept"


async def test_a_new_watch_list_replaces_the_old_one(inproc: InProcRelay) -> None:
    alice, bob, carol = await logins(inproc, 3)
    for peer in (bob, carol):
        await peer.call(Send, to=alice.user, msg=os.urandom(16), body=b"hi", conv=True)
        await _subscribed(peer)
    assert set((await alice.call(Watch, users=[bob.user])).online) == {  # type: ignore[attr-defined]
        bob.user}
    assert set((await alice.call(Watch, users=[carol.user])).online) == {  # type: ignore[attr-defined]
        carol.user}
    since = len(alice.frames)
    await bob.close()  # bob goes offline: alice no longer watches him
    await carol.close()
    offline = await alice.wait_for(lambda f: isinstance(f, Presence), since=since)
    assert offline.user == carol.user and not offline.online
    # bob left first: had alice still watched him, his push would have come before
    assert [f.user for f in alice.frames[since:] if isinstance(f, Presence)] == [carol.user]


async def test_presence_watch_lists_per_identity_are_rate_limited(
        relay_with: StartRelay) -> None:
    relay = await relay_with(watch_rate=2)
    alice, bob = await relay.login(), await relay.login()
    answers = [await alice.call(Watch, users=[bob.user]) for _ in range(3)]
    assert all(isinstance(a, PresenceState) for a in answers[:2])
    assert isinstance(answers[2], Error) and answers[2].error == "rate_limited"
    assert answers[2].retry_after  # type: ignore[union-attr]
    assert isinstance(await bob.call(Watch, users=[alice.user]), PresenceState)  # per identity
