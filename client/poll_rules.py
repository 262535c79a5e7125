"""The poll rules, without I/O: what a peer's poll content (Poll, Vote, PollClose,
PollTally) does, in the style of client/rules.py.

``apply_poll(facts, incoming) -> Effects[PollWrite]``: the edge (``PollService.apply``)
reads the few :class:`PollFacts` first (is the poll message known, the poll a content
names, the voter's stored vote time, the group a 1:1 anonymous vote names), calls this,
writes the effects in the open transaction and emits the events after the commit. So
duplicates, votes before the poll or after its close, votes by non-members, invalid
choices, anonymous votes sent the wrong way, stale tallies, closes by someone other
than the creator and a close that overtakes its poll are tested by calling this
(tests/client/test_poll_rules.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..common import content as c
from ..common import polls as counting
from .cache import DELIVERED, MessageRow, PollRow
from .conv import is_group
from .events import MessageAdded, MessageChanged
from .rules import Effects, Incoming

__all__ = ["POLL_CONTENT", "PollFacts", "PollWrite", "AddPoll", "PutVote", "ClosePoll",
           "KeepEarlyClose", "PutTally", "TallyDue", "apply_poll", "poll_text", "vote_conv"]

POLL_CONTENT = (c.Poll, c.Vote, c.PollClose, c.PollTally)


def poll_text(question: str) -> str:
    """What a poll shows as a message's text (history, search, previews)."""
    return f"[poll] {question}"


@dataclass(frozen=True, slots=True)
class PollFacts:
    """What the cache knows that the rules for one poll content depend on."""

    me: bytes  # our user id
    now: int  # ms, the edge's clock
    known: bool = False  # Poll: a message with this id is already there
    closed_early: bool = False  # Poll: its author's poll_close came before it (kept)
    poll: PollRow | None = None  # Vote/PollClose/PollTally: the poll named, where it counts
    vote_at: int | None = None  # Vote: the voter's stored vote's time (None: none)
    # Vote sent 1:1 naming a group (anonymous): that group's members (None: no such group)
    members: frozenset[bytes] | None = None


class AddPoll(NamedTuple):
    row: MessageRow  # the poll's message
    creator: bytes
    question: str
    options: list[str]
    multiple: bool
    anonymous: bool
    closed: bool = False  # its creator's close came first: it arrives closed


class PutVote(NamedTuple):
    conv: bytes
    poll: bytes
    voter: bytes
    choices: list[int]
    at: int


class ClosePoll(NamedTuple):
    conv: bytes
    poll: bytes


class KeepEarlyClose(NamedTuple):
    """A poll_close for a poll not here yet (from another of its creator's devices, or a
    sender-key chain that overtook the poll's): kept, and it closes the poll if the poll
    then comes from the same author."""

    conv: bytes
    poll: bytes
    author: bytes
    at: int  # when it came (kept rows are forgotten after EARLY_CLOSE_KEPT_MS)


class PutTally(NamedTuple):
    conv: bytes
    poll: bytes
    counts: list[int]
    voters: int
    at: int


class TallyDue(NamedTuple):
    """One of our anonymous polls got a vote: publish a fresh tally after the batch."""

    conv: bytes
    poll: bytes


PollWrite = AddPoll | PutVote | ClosePoll | KeepEarlyClose | PutTally | TallyDue


def vote_conv(item: Incoming) -> bytes | None:
    """The conversation a Vote counts in: its own, or — an anonymous vote on a group poll,
    sent 1:1 to the creator — the group it names. None: a vote that can't be right (an
    anonymous vote that came through the group)."""
    vote = item.content
    assert isinstance(vote, c.Vote)
    if vote.group is None:
        return item.conv
    return vote.group if item.group is None else None


def apply_poll(facts: PollFacts, item: Incoming) -> Effects[PollWrite]:
    """The effects of ``item`` (one of :data:`POLL_CONTENT`) given ``facts``."""
    conv, author, content, group = item.conv, item.author, item.content, item.group
    out: Effects[PollWrite] = Effects()
    poll = facts.poll
    match content:
        case c.Poll():
            if facts.known:
                return out  # a duplicate
            row = MessageRow(content.id, conv, False, poll_text(content.question),
                             content.sent_at, facts.now, DELIVERED,
                             sender=author if group is not None else None)
            out.writes.append(AddPoll(row, author, content.question, list(content.options),
                                      content.multiple, content.anonymous,
                                      closed=facts.closed_early))
            out.new.append(row)
            out.receipts.append((author, conv if group is not None else None, content.id))
            out.events.append(MessageAdded(row))
        case c.Vote():
            counted_in = vote_conv(item)
            if counted_in is None:
                return out  # anonymous votes never travel in the group
            if content.group is not None and (facts.members is None
                                              or author not in facts.members):
                return out  # a 1:1 vote for a group its author isn't in (now)
            if poll is None or poll.closed:
                return out  # votes for polls we don't have, or after the close
            if not counting.valid_choices(content.choices, len(poll.options), poll.multiple):
                return out
            if poll.anonymous and poll.creator != facts.me:
                return out  # someone else's anonymous poll: only its creator counts votes
            if poll.anonymous and content.group is None and is_group(counted_in):
                return out  # an anonymous vote must come 1:1, not through the group
            if not counting.replaces(content.at, facts.vote_at):
                return out  # older than the vote we have: it arrived out of order
            out.writes.append(PutVote(counted_in, content.poll, author, list(content.choices),
                                      content.at))
            out.events.append(MessageChanged(counted_in, content.poll))
            if poll.anonymous:
                out.writes.append(TallyDue(counted_in, content.poll))
        case c.PollClose():
            if poll is None:
                out.writes.append(KeepEarlyClose(conv, content.poll, author, facts.now))
            elif poll.creator == author and not poll.closed:
                out.writes.append(ClosePoll(conv, content.poll))
                out.events.append(MessageChanged(conv, content.poll))
        case c.PollTally():
            if (poll is not None and poll.anonymous and poll.creator == author
                    and poll.creator != facts.me
                    and len(content.counts) == len(poll.options)
                    and poll.tally_at <= content.at):
                out.writes.append(PutTally(conv, content.poll, list(content.counts),
                                           content.voters, content.at))
                out.events.append(MessageChanged(conv, content.poll))
    return out
