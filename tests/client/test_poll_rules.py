"""The poll rules (client/poll_rules.py), driven directly: no cache, no relay, no clock.
A small in-memory model plays the cache (what the edge reads first and writes after), so
these are the rules' outcomes as a user would see them: duplicates, votes before the poll
or after its close, anonymous votes sent the wrong way, stale votes and tallies."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenchat.client.cache import PollRow
from tenchat.client.events import MessageAdded, MessageChanged
from tenchat.client.poll_rules import (
    AddPoll,
    ClosePoll,
    KeepEarlyClose,
    PollFacts,
    PutTally,
    PutVote,
    TallyDue,
    apply_poll,
    poll_text,
    vote_conv,
)
from tenchat.client.rules import Effects, Incoming
from tenchat.common import content as c
from tenchat.common.groups import ADMIN, MEMBER, GroupState

ME, BOB, CAROL, MALLORY = b"a" * 32, b"b" * 32, b"c" * 32, b"m" * 32
GROUP = b"g" * 16
NOW = 5_000
POLL = (7).to_bytes(16, "big")
GROUP_STATE = GroupState(group=GROUP, version=1, roles={ME: ADMIN, BOB: MEMBER, CAROL: MEMBER})


@dataclass
class Model:
    """The cache as the poll rules see it."""

    messages: set[tuple[bytes, bytes]] = field(default_factory=set)
    polls: dict[tuple[bytes, bytes], PollRow] = field(default_factory=dict)
    votes: dict[tuple[bytes, bytes, bytes], tuple[list[int], int]] = field(default_factory=dict)
    groups: dict[bytes, frozenset[bytes]] = field(
        default_factory=lambda: {GROUP: frozenset(GROUP_STATE.roles)})
    tally_due: set[tuple[bytes, bytes]] = field(default_factory=set)
    early_closes: set[tuple[bytes, bytes, bytes]] = field(default_factory=set)

    def facts(self, item: Incoming) -> PollFacts:
        content = item.content
        base = PollFacts(ME, NOW)
        match content:
            case c.Poll():
                return replace(base, known=(item.conv, content.id) in self.messages,
                               closed_early=(item.conv, content.id, item.author)
                               in self.early_closes)
            case c.Vote():
                conv = vote_conv(item)
                if conv is None:
                    return base
                stored = self.votes.get((conv, content.poll, item.author))
                return replace(base, poll=self.polls.get((conv, content.poll)),
                               vote_at=stored[1] if stored else None,
                               members=self.groups.get(content.group)
                               if content.group is not None else None)
            case c.PollClose() | c.PollTally():
                return replace(base, poll=self.polls.get((item.conv, content.poll)))
        return base

    def write(self, effects: Effects) -> None:  # type: ignore[type-arg]
        for w in effects.writes:
            match w:
                case AddPoll(row, creator, question, options, multiple, anonymous, closed):
                    assert (row.peer, row.id) not in self.messages, "a duplicate was written"
                    self.messages.add((row.peer, row.id))
                    self.polls[(row.peer, row.id)] = PollRow(
                        row.peer, row.id, creator, question, options, multiple, anonymous,
                        closed, None, 0, 0)
                    self.early_closes = {k for k in self.early_closes
                                         if k[:2] != (row.peer, row.id)}
                case KeepEarlyClose(conv, poll, author, _at):
                    assert (conv, poll) not in self.polls, "kept a close for a poll we have"
                    self.early_closes.add((conv, poll, author))
                case PutVote(conv, poll, voter, choices, at):
                    assert not self.polls[(conv, poll)].closed, "a vote after the close"
                    self.votes[(conv, poll, voter)] = (choices, at)
                case ClosePoll(conv, poll):
                    self.polls[(conv, poll)] = replace(self.polls[(conv, poll)], closed=True)
                case PutTally(conv, poll, counts, voters, at):
                    self.polls[(conv, poll)] = replace(self.polls[(conv, poll)], tally=counts,
                                                       tally_voters=voters, tally_at=at)
                case TallyDue(conv, poll):
                    self.tally_due.add((conv, poll))

    def receive(self, conv: bytes, author: bytes, content: c.Content,
                group: GroupState | None = None) -> Effects:  # type: ignore[type-arg]
        item = Incoming(conv, author, content, group)
        effects = apply_poll(self.facts(item), item)
        self.write(effects)
        return effects

    def snapshot(self) -> tuple[object, ...]:
        return (frozenset(self.messages), sorted(self.polls.items()),
                sorted((k, (list(v[0]), v[1])) for k, v in self.votes.items()),
                frozenset(self.tally_due), frozenset(self.early_closes))


def poll(options: int = 3, *, multiple: bool = False, anonymous: bool = False,
         poll_id: bytes = POLL) -> c.Poll:
    return c.Poll(id=poll_id, question="Lunch?", options=[f"o{i}" for i in range(options)],
                  sent_at=1, multiple=multiple, anonymous=anonymous)


def vote(choices: list[int], at: int = 10, group: bytes | None = None) -> c.Vote:
    return c.Vote(poll=POLL, choices=choices, at=at, group=group)


def with_poll(conv: bytes = BOB, creator: bytes = BOB, group: GroupState | None = None,
              **kw: object) -> Model:
    m = Model()
    m.receive(conv, creator, poll(**kw), group)  # type: ignore[arg-type]
    return m


# --- the poll message ------------------------------------------------------------------------


def test_a_poll_is_a_message_with_a_receipt_and_an_event() -> None:
    m = Model()
    out = m.receive(BOB, BOB, poll())
    assert [r.text for r in out.new] == [poll_text("Lunch?")]
    assert out.receipts == [(BOB, None, POLL)]
    assert [type(e) for e in out.events] == [MessageAdded]
    assert m.polls[(BOB, POLL)].creator == BOB and not m.polls[(BOB, POLL)].closed


def test_a_group_poll_names_its_author_and_receipts_name_the_group() -> None:
    m = Model()
    out = m.receive(GROUP, BOB, poll(), GROUP_STATE)
    assert out.new[0].sender == BOB and out.new[0].peer == GROUP
    assert out.receipts == [(BOB, GROUP, POLL)]


@pytest.mark.parametrize("times", [2, 3, 5])
def test_a_redelivered_poll_changes_nothing(times: int) -> None:
    m = with_poll()
    for _ in range(times - 1):
        assert not m.receive(BOB, BOB, poll())


# --- votes -----------------------------------------------------------------------------------


def test_a_vote_counts_and_tells_the_ui() -> None:
    m = with_poll()
    out = m.receive(BOB, BOB, vote([1]))
    assert m.votes[(BOB, POLL, BOB)] == ([1], 10)
    assert out.events == [MessageChanged(BOB, POLL)]
    assert not m.tally_due  # a named poll: everyone counts, no tally to publish


def test_a_vote_before_its_poll_is_ignored() -> None:
    m = Model()
    assert not m.receive(BOB, BOB, vote([0]))
    assert m.votes == {}


def test_a_vote_for_a_poll_of_another_conversation_is_ignored() -> None:
    m = with_poll(conv=CAROL, creator=CAROL)
    assert not m.receive(BOB, BOB, vote([0]))


def test_votes_after_the_close_are_ignored_and_earlier_ones_stay() -> None:
    m = with_poll()
    m.receive(BOB, BOB, vote([0], at=10))
    m.receive(BOB, BOB, c.PollClose(poll=POLL))
    assert not m.receive(BOB, BOB, vote([2], at=20))
    assert m.votes == {(BOB, POLL, BOB): ([0], 10)}


@pytest.mark.parametrize(("choices", "multiple"), [
    ([3], False), ([-1], False), ([0, 1], False), ([1, 1], True), ([0, 0], False),
    ([0, 1, 2, 3], True), ([5], True),
])
def test_invalid_choices_are_ignored(choices: list[int], multiple: bool) -> None:
    m = with_poll(multiple=multiple)
    assert not m.receive(BOB, BOB, vote(choices))
    assert m.votes == {}


@pytest.mark.parametrize(("choices", "multiple"), [
    ([], False), ([0], False), ([2], False), ([0, 2], True), ([2, 1, 0], True), ([], True),
])
def test_valid_choices_count(choices: list[int], multiple: bool) -> None:
    m = with_poll(multiple=multiple)
    assert m.receive(BOB, BOB, vote(choices))
    assert m.votes[(BOB, POLL, BOB)][0] == choices


@pytest.mark.parametrize(("first", "second", "kept"), [
    (10, 20, 20), (20, 10, 20), (10, 10, 10),
])
def test_the_latest_vote_wins_whatever_the_arrival_order(first: int, second: int,
                                                         kept: int) -> None:
    m = with_poll()
    m.receive(BOB, BOB, vote([0], at=first))
    out = m.receive(BOB, BOB, vote([1], at=second))
    assert m.votes[(BOB, POLL, BOB)][1] == kept
    assert bool(out) == (second >= first)  # a stale vote changes nothing, tells nobody


def test_a_group_vote_counts_in_the_group() -> None:
    m = with_poll(conv=GROUP, creator=BOB, group=GROUP_STATE)
    m.receive(GROUP, CAROL, vote([2]), GROUP_STATE)
    assert m.votes == {(GROUP, POLL, CAROL): ([2], 10)}


# --- anonymous polls -------------------------------------------------------------------------


def test_an_anonymous_vote_on_our_group_poll_comes_1to1_and_we_publish_a_tally() -> None:
    m = with_poll(conv=GROUP, creator=ME, group=GROUP_STATE, anonymous=True)
    out = m.receive(BOB, BOB, vote([1], group=GROUP))  # 1:1, naming the group
    assert m.votes == {(GROUP, POLL, BOB): ([1], 10)}
    assert out.events == [MessageChanged(GROUP, POLL)]
    assert m.tally_due == {(GROUP, POLL)}


def test_an_anonymous_vote_through_the_group_is_ignored() -> None:
    m = with_poll(conv=GROUP, creator=ME, group=GROUP_STATE, anonymous=True)
    assert not m.receive(GROUP, BOB, vote([1], group=GROUP), GROUP_STATE)
    assert not m.receive(GROUP, BOB, vote([1]), GROUP_STATE)  # nor without naming it
    assert m.votes == {} and not m.tally_due


def test_an_anonymous_vote_from_outside_the_group_is_ignored() -> None:
    m = with_poll(conv=GROUP, creator=ME, group=GROUP_STATE, anonymous=True)
    assert not m.receive(MALLORY, MALLORY, vote([1], group=GROUP))
    assert m.votes == {}


def test_an_anonymous_vote_for_an_unknown_group_is_ignored() -> None:
    m = with_poll(conv=GROUP, creator=ME, group=GROUP_STATE, anonymous=True)
    assert not m.receive(BOB, BOB, vote([1], group=b"x" * 16))


def test_only_the_creator_counts_anonymous_votes() -> None:
    m = with_poll(conv=GROUP, creator=BOB, group=GROUP_STATE, anonymous=True)
    assert not m.receive(CAROL, CAROL, vote([0], group=GROUP))  # Bob's poll, not ours
    assert m.votes == {}


def test_an_anonymous_1to1_poll_of_ours_counts_votes_from_the_peer() -> None:
    m = with_poll(conv=BOB, creator=ME, anonymous=True)
    assert m.receive(BOB, BOB, vote([0]))
    assert m.tally_due == {(BOB, POLL)}


# --- close and tally -------------------------------------------------------------------------


def test_only_the_creator_closes_and_only_once() -> None:
    m = with_poll(conv=GROUP, creator=BOB, group=GROUP_STATE)
    assert not m.receive(GROUP, CAROL, c.PollClose(poll=POLL), GROUP_STATE)
    assert not m.polls[(GROUP, POLL)].closed
    assert m.receive(GROUP, BOB, c.PollClose(poll=POLL), GROUP_STATE).events == [
        MessageChanged(GROUP, POLL)]
    assert not m.receive(GROUP, BOB, c.PollClose(poll=POLL), GROUP_STATE)  # again: nothing


def test_a_close_before_its_poll_closes_it_when_it_comes() -> None:
    """Across a creator's devices, or sender-key chains, the close can overtake the poll:
    it is kept (nothing shown yet) and the poll then arrives closed."""
    m = Model()
    early = m.receive(GROUP, BOB, c.PollClose(poll=POLL), GROUP_STATE)
    assert early.writes == [KeepEarlyClose(GROUP, POLL, BOB, NOW)] and not early.events
    m.receive(GROUP, BOB, poll(), GROUP_STATE)
    assert m.polls[(GROUP, POLL)].closed and not m.early_closes
    assert not m.receive(GROUP, CAROL, vote([0]), GROUP_STATE)  # no vote counts
    assert not m.receive(GROUP, BOB, c.PollClose(poll=POLL), GROUP_STATE)  # again: nothing


def test_an_early_close_by_someone_else_leaves_the_poll_open() -> None:
    m = Model()
    m.receive(GROUP, CAROL, c.PollClose(poll=POLL), GROUP_STATE)
    m.receive(GROUP, BOB, poll(), GROUP_STATE)
    assert not m.polls[(GROUP, POLL)].closed and not m.early_closes
    assert m.receive(GROUP, CAROL, vote([0]), GROUP_STATE)


def test_an_early_close_in_another_conversation_leaves_the_poll_open() -> None:
    m = Model()
    m.receive(BOB, BOB, c.PollClose(poll=POLL))
    m.receive(GROUP, BOB, poll(), GROUP_STATE)
    assert not m.polls[(GROUP, POLL)].closed


def tally(counts: list[int], at: int = 50, voters: int = 1) -> c.PollTally:
    return c.PollTally(poll=POLL, counts=counts, voters=voters, at=at)


def test_the_creators_tally_is_kept_when_not_older() -> None:
    m = with_poll(conv=GROUP, creator=BOB, group=GROUP_STATE, anonymous=True)
    assert m.receive(GROUP, BOB, tally([1, 0, 0], at=50), GROUP_STATE)
    assert not m.receive(GROUP, BOB, tally([0, 0, 0], at=40), GROUP_STATE)  # out of order
    assert m.polls[(GROUP, POLL)].tally == [1, 0, 0]
    assert m.receive(GROUP, BOB, tally([1, 1, 0], at=60, voters=2), GROUP_STATE)
    assert m.polls[(GROUP, POLL)].tally_voters == 2


@pytest.mark.parametrize(("author", "counts", "anonymous", "creator"), [
    (CAROL, [1, 0, 0], True, BOB),  # not the creator
    (BOB, [1, 0], True, BOB),  # wrong number of options
    (BOB, [1, 0, 0], False, BOB),  # a named poll: everyone counts for themselves
    (ME, [1, 0, 0], True, ME),  # our own poll: we count, nobody tells us
])
def test_tallies_that_dont_count(author: bytes, counts: list[int], anonymous: bool,
                                 creator: bytes) -> None:
    m = with_poll(conv=GROUP, creator=creator, group=GROUP_STATE, anonymous=anonymous)
    assert not m.receive(GROUP, author, tally(counts), GROUP_STATE)
    assert m.polls[(GROUP, POLL)].tally is None


def test_a_tally_before_its_poll_is_ignored() -> None:
    assert not Model().receive(GROUP, BOB, tally([1, 0, 0]), GROUP_STATE)


# --- properties over any delivery ------------------------------------------------------------

VOTERS = (BOB, CAROL, MALLORY)
events_strategy = st.lists(st.one_of(
    st.tuples(st.just("vote"), st.sampled_from(VOTERS),
              st.lists(st.integers(-1, 3), max_size=3), st.integers(0, 40)),
    st.tuples(st.just("close"), st.sampled_from((BOB, CAROL)), st.just([]), st.just(0)),
    st.tuples(st.just("poll"), st.just(BOB), st.just([]), st.just(0)),
), max_size=25)


def play(m: Model, script: list[tuple[str, bytes, list[int], int]]) -> None:
    group = GroupState(group=GROUP, version=1, roles={ME: ADMIN, BOB: MEMBER, CAROL: MEMBER,
                                                      MALLORY: MEMBER})
    for kind, who, choices, at in script:
        content: c.Content = (vote(choices, at) if kind == "vote"
                              else c.PollClose(poll=POLL) if kind == "close" else poll())
        m.receive(GROUP, who, content, group)


@settings(max_examples=150, deadline=None)
@given(events_strategy)
def test_a_redelivered_content_changes_nothing(script: list) -> None:  # type: ignore[type-arg]
    """The relay redelivers until acked: each content twice leaves the state as once
    (the model also asserts no duplicate row is ever written)."""
    once, twice = Model(), Model()
    play(once, script)
    play(twice, [item for item in script for _ in (0, 1)])
    assert once.snapshot() == twice.snapshot()


@settings(max_examples=150, deadline=None)
@given(events_strategy)
def test_whatever_the_order_no_vote_is_stored_after_the_close(script: list) -> None:  # type: ignore[type-arg]
    """(The model asserts it on every write.) And every stored vote is a valid one, for
    a poll we have, the latest its voter sent before the close."""
    m = Model()
    play(m, script)
    for (conv, poll_id, _voter), (choices, _at) in m.votes.items():
        row = m.polls[(conv, poll_id)]
        assert len(set(choices)) == len(choices) and all(0 <= i < 3 for i in choices)
        assert row.multiple or len(choices) <= 1


@settings(max_examples=150, deadline=None)
@given(st.permutations([(v, at) for v, ats in ((BOB, (3, 9)), (CAROL, (5, 7)),
                                               (MALLORY, (1, 2, 8))) for at in ats]))
def test_votes_on_an_open_poll_end_the_same_in_any_order(order: list) -> None:  # type: ignore[type-arg]
    """Out-of-order delivery: each voter's latest vote (by its own clock) wins."""
    m = with_poll(conv=GROUP, creator=BOB, group=GROUP_STATE)
    for voter, at in order:
        m.receive(GROUP, voter, vote([at % 3], at), GROUP_STATE)
    assert {k[2]: v for k, v in m.votes.items()} == {
        BOB: ([0], 9), CAROL: ([1], 7), MALLORY: ([2], 8)}


@settings(max_examples=150, deadline=None)
@given(events_strategy)
def test_the_creators_close_closes_the_poll_whatever_the_order(script: list) -> None:  # type: ignore[type-arg]
    """Poll and close in any order (the close first included): once both are in, the
    poll is closed exactly when its creator (BOB) sent a close; nothing stays kept for a
    poll we have."""
    m = Model()
    play(m, script)
    if any(kind == "poll" for kind, *_ in script):
        row = m.polls[(GROUP, POLL)]
        assert row.closed == any(kind == "close" and who == BOB for kind, who, *_ in script)
        assert not m.early_closes
