"""The rules for the social layer's 1:1 content, without I/O (in the style of
client/rules.py): followers-only audience keys, close-friends story keys, and view
receipts on our stories. All three count only 1:1 (the pairwise session authenticates
who sent them; in a group anyone could claim them). Tested by
tests/client/test_social_rules.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..common import content as c
from .events import StoryViewed
from .rules import Effects, Incoming

__all__ = ["SOCIAL_CONTENT", "SocialFacts", "SocialWrite", "PutAudienceKey", "PutStoryKey",
           "AddStoryView", "apply_social"]

SOCIAL_CONTENT = (c.AudienceKey, c.StoryKey, c.StoryViewed)


@dataclass(frozen=True, slots=True)
class SocialFacts:
    now: int  # ms, the edge's clock
    our_story: bool = False  # StoryViewed: the story is ours and unexpired
    viewed: bool = False  # StoryViewed: this viewer's receipt is already recorded


class PutAudienceKey(NamedTuple):
    author: bytes
    key_id: int
    key: bytes
    at: int


class PutStoryKey(NamedTuple):
    author: bytes
    key_id: int
    key: bytes
    at: int


class AddStoryView(NamedTuple):
    story: bytes
    viewer: bytes
    at: int  # the viewer's clock


SocialWrite = PutAudienceKey | PutStoryKey | AddStoryView


def apply_social(facts: SocialFacts, item: Incoming) -> Effects[SocialWrite]:
    """The effects of ``item`` (one of :data:`SOCIAL_CONTENT`) given ``facts``."""
    out: Effects[SocialWrite] = Effects()
    if item.group is not None:
        return out  # 1:1 only
    author, content = item.author, item.content
    match content:
        case c.AudienceKey():
            out.writes.append(PutAudienceKey(author, content.key_id, content.key, facts.now))
        case c.StoryKey():
            out.writes.append(PutStoryKey(author, content.key_id, content.key, facts.now))
        case c.StoryViewed():
            if facts.our_story and not facts.viewed:
                out.writes.append(AddStoryView(content.story, author, content.at))
                out.events.append(StoryViewed(content.story, author))
    return out
