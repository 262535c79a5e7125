"""Story notifications (the relay's ``story_new`` push → :class:`StoryPosted`), against a
real relay process: a follower online hears of a new story it can open, at once; a
close-friends story is news only to the close friends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tenchat.client.events import ONLINE, ConnectionChanged, Event, StoryPosted
from tests.client.test_live import Recorder
from tests.support.clients import People

pytestmark = pytest.mark.slow


@pytest.mark.asyncio
async def test_followers_online_get_an_event_for_each_story_they_can_open(
        people: People) -> None:
    async with asyncio.timeout(90):
        alice, bob, carol = await people("alice", "bob", "carol")
        for follower in (bob, carol):
            assert await follower.social.follow("alice") == "following"
        await alice.stories.add_close_friend("bob")  # carol is not one
        runs: list[asyncio.Task[None]] = []
        recorders: dict[object, Recorder] = {}
        for who in (bob, carol):
            recorders[who] = Recorder(who)
            runs.append(asyncio.create_task(who.run()))
            await recorders[who].wait_for(
                lambda e: isinstance(e, ConnectionChanged) and e.state == ONLINE)
        b_events, c_events = recorders[bob], recorders[carol]

        def posted(story: bytes) -> Callable[[Event], bool]:
            return lambda e: isinstance(e, StoryPosted) and e.story == story

        try:
            public = await alice.stories.post_story("for my followers")
            for rec in (b_events, c_events):
                got = await rec.wait_for(posted(public.id))
                assert isinstance(got, StoryPosted)
                assert (got.author, got.handle) == (alice.user, "alice")
            close = await alice.stories.post_story("only for bob", close_friends=True)
            await b_events.wait_for(posted(close.id))
            # carol's client fetched the close-friends story too (pushes are handled in
            # order) but can't open it: no event for it before the next story's
            after = await alice.stories.post_story("for everyone again")
            await c_events.wait_for(posted(after.id))
            assert not [e for e in c_events.events if posted(close.id)(e)]
            await b_events.wait_for(posted(after.id))
            assert [e.story for e in b_events.events if isinstance(e, StoryPosted)] == [
                public.id, close.id, after.id]
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
