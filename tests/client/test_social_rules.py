"""The social layer's 1:1 content rules (client/social_rules.py), driven directly:
audience and story keys are kept 1:1 only; a view receipt counts once, on our story."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenchat.client.events import StoryViewed
from tenchat.client.rules import Incoming
from tenchat.client.social_rules import (
    AddStoryView,
    PutAudienceKey,
    PutStoryKey,
    SocialFacts,
    apply_social,
)
from tenchat.common import content as c
from tenchat.common.groups import MEMBER, GroupState

BOB, CAROL = b"b" * 32, b"c" * 32
GROUP = b"g" * 16
NOW = 7_000
STATE = GroupState(group=GROUP, version=1, roles={BOB: MEMBER, CAROL: MEMBER})
STORY = b"s" * 16
KEY = b"k" * 32


def test_an_audience_key_from_a_followee_is_kept() -> None:
    out = apply_social(SocialFacts(NOW), Incoming(BOB, BOB, c.AudienceKey(key_id=4, key=KEY)))
    assert out.writes == [PutAudienceKey(BOB, 4, KEY, NOW)] and out.events == []


def test_a_story_key_from_a_close_friend_is_kept() -> None:
    out = apply_social(SocialFacts(NOW), Incoming(BOB, BOB, c.StoryKey(key_id=9, key=KEY)))
    assert out.writes == [PutStoryKey(BOB, 9, KEY, NOW)]


@pytest.mark.parametrize("content", [
    c.AudienceKey(key_id=1, key=KEY), c.StoryKey(key_id=1, key=KEY),
    c.StoryViewed(story=STORY, at=5),
])
def test_nothing_social_counts_through_a_group(content: c.Content) -> None:
    facts = SocialFacts(NOW, our_story=True)
    assert not apply_social(facts, Incoming(GROUP, BOB, content, STATE))


def test_a_view_receipt_on_our_story_counts_once() -> None:
    viewed = c.StoryViewed(story=STORY, at=5)
    out = apply_social(SocialFacts(NOW, our_story=True), Incoming(BOB, BOB, viewed))
    assert out.writes == [AddStoryView(STORY, BOB, 5)]
    assert out.events == [StoryViewed(STORY, BOB)]
    again = apply_social(SocialFacts(NOW, our_story=True, viewed=True),
                         Incoming(BOB, BOB, viewed))
    assert not again


def test_a_view_receipt_on_someone_elses_or_an_expired_story_is_ignored() -> None:
    viewed = c.StoryViewed(story=STORY, at=5)
    assert not apply_social(SocialFacts(NOW, our_story=False), Incoming(BOB, BOB, viewed))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([BOB, CAROL]), st.integers(0, 100)), max_size=20))
def test_each_viewer_is_recorded_once_whatever_is_redelivered(
        receipts: list[tuple[bytes, int]]) -> None:
    seen: dict[bytes, int] = {}
    for viewer, at in receipts:
        out = apply_social(SocialFacts(NOW, our_story=True, viewed=viewer in seen),
                           Incoming(viewer, viewer, c.StoryViewed(story=STORY, at=at)))
        for w in out.writes:
            assert isinstance(w, AddStoryView) and w.viewer not in seen
            seen[w.viewer] = w.at
    assert set(seen) == {v for v, _ in receipts}
    assert all(seen[v] == next(at for w, at in receipts if w == v) for v in seen)
