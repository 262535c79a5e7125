"""Posts against a real relay: signatures and authorship checked, feeds paged newest first."""

from __future__ import annotations

import os

import pytest

from tenchat.common import social
from tenchat.common.frames import (
    Error,
    Feed,
    FeedItems,
    FollowReq,
    FollowState,
    Ok,
    PostPut,
    ProfileSet,
)
from tests.relay.test_relay_social import follow, profile, signer
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, async_test, logged_in

pytestmark = pytest.mark.slow


def post(c: RelayClient, text: str) -> bytes:
    return social.sign_post(social.Post(author=c.user, id=os.urandom(16), created_at=1,
                                        text=text), signer(c))


@async_test
async def test_post_put_checks_and_feed_pages(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        # bob can't post as alice, nor with a bad signature
        as_alice = social.sign_post(social.Post(author=alice.user, id=os.urandom(16),
                                                created_at=1), signer(bob))
        res = await bob.call(PostPut, record=as_alice)
        assert isinstance(res, Error) and res.error == "bad_signature"
        res = await bob.call(PostPut, record=post(alice, "alice's"))
        assert isinstance(res, Error) and res.error == "forbidden"
        records = [post(alice, f"a{i}") for i in range(5)]
        for r in records:
            assert isinstance(await alice.call(PostPut, record=r), Ok)
        assert isinstance(await alice.call(PostPut, record=records[0]), Ok)  # idempotent
        assert isinstance(await carol.call(PostPut, record=post(carol, "c")), Ok)
        assert isinstance(await bob.call(FollowReq, record=follow(bob, alice)), FollowState)
        page = await bob.call(Feed, limit=3)
        assert isinstance(page, FeedItems) and page.more
        assert page.records == records[::-1][:3]
        before = social.open_post(page.records[-1]).id
        rest = await bob.call(Feed, limit=3, before=before)
        assert isinstance(rest, FeedItems) and rest.records == records[1::-1]
        assert not rest.more
        only = await bob.call(Feed, authors=[carol.user])
        assert isinstance(only, FeedItems) and len(only.records) == 1
        # a private account's posts must be followers-only
        await carol.call(ProfileSet, record=profile(carol, 1, private=True))
        res = await carol.call(PostPut, record=post(carol, "public?"))
        assert isinstance(res, Error) and res.error == "forbidden"
        sealed = social.seal_post(social.Post(author=carol.user, id=os.urandom(16),
                                              created_at=2, text="hidden"), 1, bytes(32),
                                  signer(carol))
        assert isinstance(await carol.call(PostPut, record=sealed), Ok)
