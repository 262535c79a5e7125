"""Profiles and follows against a real relay: signatures checked, ownership enforced."""

from __future__ import annotations

import pytest

from tenchat.common import social
from tenchat.common.frames import (
    ApproveReq,
    Error,
    FollowItems,
    FollowList,
    FollowReq,
    FollowState,
    Ok,
    ProfileGet,
    ProfileInfo,
    ProfileSet,
    RemoveFollower,
    Unfollow,
)
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, async_test, logged_in

pytestmark = pytest.mark.slow


def signer(c: RelayClient):  # type: ignore[no-untyped-def]
    assert c.key is not None
    return lambda m: c.key.sign(m).signature  # type: ignore[union-attr]


def profile(c: RelayClient, at: int, **fields: object) -> bytes:
    return social.sign_profile(social.Profile(user=c.user, updated_at=at, **fields),  # type: ignore[arg-type]
                               signer(c))


def follow(a: RelayClient, b: RelayClient) -> bytes:
    return social.sign_follow(social.Follow(follower=a.user, target=b.user, at=1), signer(a))


@async_test
async def test_profile_set_get_newest_wins(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 2) as (alice, bob):
        missing = await bob.call(ProfileGet, user=alice.user)
        assert isinstance(missing, Error) and missing.error == "not_found"
        v2 = profile(alice, 2000, display_name="Alice", bio="hi")
        held = await alice.call(ProfileSet, record=v2)
        assert isinstance(held, ProfileInfo) and held.record == v2
        # an older record does not roll the profile back; the answer is the newest held
        held = await alice.call(ProfileSet, record=profile(alice, 1000, display_name="Old"))
        assert isinstance(held, ProfileInfo) and held.record == v2
        got = await bob.call(ProfileGet, user=alice.user)
        assert isinstance(got, ProfileInfo)
        assert social.open_profile(got.record).display_name == "Alice"


@async_test
async def test_profile_set_refuses_forgeries(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 2) as (alice, bob):
        # bob signs a profile naming alice: not his to set (and not signed by alice)
        forged = social.sign_profile(social.Profile(user=alice.user, updated_at=5), signer(bob))
        err = await bob.call(ProfileSet, record=forged)
        assert isinstance(err, Error) and err.error == "bad_signature"
        # alice's genuine record sent by bob: forbidden
        err = await bob.call(ProfileSet, record=profile(alice, 5))
        assert isinstance(err, Error) and err.error == "forbidden"
        # a tampered body
        rec = social.SignedRecord(body=b"\x80", sig=bytes(64))
        import msgspec

        err = await alice.call(ProfileSet, record=msgspec.msgpack.encode(rec))
        assert isinstance(err, Error) and err.error == "malformed"
        too_long = await alice.call(ProfileSet, record=profile(alice, 5, display_name="x" * 65))
        assert isinstance(too_long, Error) and too_long.error == "malformed"


@async_test
async def test_public_and_private_follows(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        # bob is public: following at once
        st = await alice.call(FollowReq, record=follow(alice, bob))
        assert isinstance(st, FollowState) and st.state == "following"
        # carol is private: a request she approves
        await carol.call(ProfileSet, record=profile(carol, 1, private=True))
        st = await alice.call(FollowReq, record=follow(alice, carol))
        assert isinstance(st, FollowState) and st.state == "requested"
        st = await bob.call(FollowReq, record=follow(bob, carol))
        assert isinstance(st, FollowState) and st.state == "requested"
        page = await carol.call(FollowList, user=carol.user, kind="requests")
        assert isinstance(page, FollowItems) and len(page.items) == 2
        err = await alice.call(FollowList, user=carol.user, kind="requests")
        assert isinstance(err, Error) and err.error == "forbidden"
        # only carol can approve her requests
        forged = social.sign_approval(
            social.Approval(owner=carol.user, follower=alice.user, at=2), signer(alice))
        err = await alice.call(ApproveReq, record=forged)
        assert isinstance(err, Error) and err.error == "bad_signature"
        approval = social.sign_approval(
            social.Approval(owner=carol.user, follower=alice.user, at=2), signer(carol))
        assert isinstance(await carol.call(ApproveReq, record=approval), Ok)
        assert isinstance(await carol.call(RemoveFollower, user=bob.user), Ok)  # deny
        err = await carol.call(ApproveReq, record=social.sign_approval(
            social.Approval(owner=carol.user, follower=bob.user, at=3), signer(carol)))
        assert isinstance(err, Error) and err.error == "not_found"
        page = await bob.call(FollowList, user=carol.user, kind="followers")
        assert isinstance(page, FollowItems)
        assert [social.open_follow(e.follow).follower for e in page.items] == [alice.user]
        assert page.items[0].approval == approval
        page = await bob.call(FollowList, user=alice.user, kind="following")
        assert isinstance(page, FollowItems)
        assert {social.open_follow(e.follow).target for e in page.items} == {bob.user,
                                                                             carol.user}
        # a follow signed by someone else, and a self-follow, are refused
        err = await bob.call(FollowReq, record=follow(alice, carol))
        assert isinstance(err, Error) and err.error == "forbidden"
        err = await bob.call(FollowReq, record=follow(bob, bob))
        assert isinstance(err, Error) and err.error == "malformed"
        assert isinstance(await alice.call(Unfollow, user=bob.user), Ok)
        page = await carol.call(FollowList, user=bob.user, kind="followers")
        assert isinstance(page, FollowItems) and page.items == []
