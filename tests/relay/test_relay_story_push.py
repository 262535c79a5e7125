"""The ``story_new`` push (docs/protocol.md §6C) on an in-process relay: a new story
reaches its author's approved followers who are online, and nobody else."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from nacl.signing import SigningKey

from tenchat.common import social
from tenchat.common import stories as st
from tenchat.common.frames import (
    ApproveReq,
    FollowReq,
    FollowState,
    Ok,
    ProfileGet,
    ProfileInfo,
    ProfileSet,
    StoryNew,
    StoryPut,
    Subscribe,
    Synced,
)
from tests.support.inproc import Peer, StartRelay, eventually

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio"])

KEY = os.urandom(32)


def _sign(peer: Peer) -> Callable[[bytes], bytes]:
    key = peer.key
    assert key is not None
    return lambda m: key.sign(m).signature


async def _online(peer: Peer) -> None:
    assert isinstance(await peer.call(Subscribe), Ok)
    await peer.wait_for(lambda f: isinstance(f, Synced))


async def _follow(follower: Peer, target: Peer) -> str:
    record = social.sign_follow(social.Follow(follower=follower.user, target=target.user, at=1),
                                _sign(follower))
    state = await follower.call(FollowReq, record=record)
    assert isinstance(state, FollowState), state
    return state.state


def _story(author: Peer, audience: str) -> bytes:
    now = time.time_ns() // 1_000_000
    story = st.Story(author=author.user, id=os.urandom(16), posted_at=now,
                     expires_at=now + st.STORY_TTL_MS, text="hi")
    return st.seal_story(story, audience, 1, KEY, _sign(author))


@pytest.mark.parametrize("audience", [st.FOLLOWERS, st.CLOSE_FRIENDS])
async def test_a_new_story_is_pushed_to_online_approved_followers_only(
    relay_with: StartRelay, audience: str,
) -> None:
    relay = await relay_with()
    alice, bob, carol, dave, erin = [
        await relay.login(SigningKey.generate()) for _ in range(5)]
    # alice is private: bob and dave are approved, carol only asked, erin doesn't follow
    profile = social.sign_profile(social.Profile(user=alice.user, updated_at=1, private=True),
                                  _sign(alice))
    assert isinstance(await alice.call(ProfileSet, record=profile), ProfileInfo)
    for peer in (bob, carol, dave):
        assert await _follow(peer, alice) == "requested"
    for peer in (bob, dave):
        approval = social.sign_approval(
            social.Approval(owner=alice.user, follower=peer.user, at=2), _sign(alice))
        assert isinstance(await alice.call(ApproveReq, record=approval), Ok)
    for peer in (alice, bob, carol, erin):
        await _online(peer)  # dave is connected but not subscribed: not online

    record = _story(alice, audience)
    assert isinstance(await alice.call(StoryPut, record=record), Ok)
    push = await bob.wait_for(lambda f: isinstance(f, StoryNew))
    assert push == StoryNew(author=alice.user, story=st.open_story(record).id)
    await eventually(lambda: not relay.hub._tasks)  # the fan-out is over
    for peer in (alice, carol, dave, erin):  # a round trip: anything pushed has arrived
        assert isinstance(await peer.call(ProfileGet, user=alice.user), ProfileInfo)
        assert peer.of(StoryNew) == [], peer

    # the same record again (a retry) is no news
    assert isinstance(await alice.call(StoryPut, record=record), Ok)
    await eventually(lambda: not relay.hub._tasks)
    assert isinstance(await bob.call(ProfileGet, user=alice.user), ProfileInfo)
    assert len(bob.of(StoryNew)) == 1
