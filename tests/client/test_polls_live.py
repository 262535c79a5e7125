"""Polls against modified clients, through a real relay: votes for options that don't
exist, late votes, votes from non-members, closes and tallies from someone who is not the
creator, anonymous votes posted to the whole group — all ignored by the honest clients."""

from __future__ import annotations

import pytest

from tenchat.client.service import Client
from tenchat.common import content as c
from tests.support.clients import People

pytestmark = pytest.mark.slow


async def nothing() -> None:
    return None


async def send_raw(client: Client, conv: bytes, content: c.Content, *,
                   to: bytes | None = None) -> None:
    """What a modified client can send: any content, none of the local checks."""
    await client.act(conv, content, nothing, to=to)


async def counts(client: Client, conv: bytes, poll: bytes) -> list[int]:
    await client.sync()
    return (await client.polls.view(conv, poll)).counts


@pytest.mark.asyncio
async def test_hostile_votes_are_ignored(people: People) -> None:
    alice, bob, carol, dave = await people("alice", "bob", "carol", "dave")
    group = await alice.groups.create("ops", ["bob", "carol"])
    poll = (await alice.polls.create(group, "Which?", ["a", "b", "c"])).id
    await bob.sync()
    await carol.sync()
    # Options out of range, the same option twice, two options in a single-choice poll.
    for choices in ([5], [0, 0], [0, 1]):
        await send_raw(bob, group, c.Vote(poll=poll, choices=choices, at=10**13))
    assert await counts(carol, group, poll) == [0, 0, 0]
    assert await counts(alice, group, poll) == [0, 0, 0]
    # A valid vote, then an older one (by the voter's clock) arriving later: kept.
    await send_raw(bob, group, c.Vote(poll=poll, choices=[1], at=2000))
    await send_raw(bob, group, c.Vote(poll=poll, choices=[2], at=1000))
    assert await counts(carol, group, poll) == [0, 1, 0]
    # bob can't close alice's poll, nor publish a tally for it.
    await send_raw(bob, group, c.PollClose(poll=poll))
    await send_raw(bob, group, c.PollTally(poll=poll, counts=[9, 9, 9], voters=9, at=5))
    await carol.sync()
    view = await carol.polls.view(group, poll)
    assert view.closed is False and view.counts == [0, 1, 0]
    # alice closes; bob's client hasn't heard yet and votes: nobody counts it.
    await alice.polls.close(group, poll)
    await bob.polls.vote(group, poll, [0])
    assert await counts(carol, group, poll) == [0, 1, 0]
    assert await counts(alice, group, poll) == [0, 1, 0]
    assert (await carol.polls.view(group, poll)).closed is True

    # Anonymous: votes count only when sent 1:1 to the creator by a member.
    anon = (await alice.polls.create(group, "Secret?", ["yes", "no"],
                                     anonymous=True)).id
    await bob.sync()
    await carol.sync()
    await send_raw(bob, group, c.Vote(poll=anon, choices=[0], at=1))  # to everyone
    await send_raw(dave, alice.user, c.Vote(poll=anon, choices=[0], at=1, group=group),
                   to=alice.user)  # dave is no member
    assert await counts(alice, group, anon) == [0, 0]
    assert await counts(carol, group, anon) == [0, 0]
    await bob.polls.vote(group, anon, [1])
    assert await counts(alice, group, anon) == [0, 1]
    await carol.sync()
    view = await carol.polls.view(group, anon)
    assert view.counts == [0, 1] and view.voters == 1 and view.names is None
    # carol's client never received bob's ballot: only alice's tally.
    assert bob.user not in await carol.cache.polls.votes(group, anon)
    # bob takes his vote back: the creator's next tally says so.
    assert (await bob.polls.vote(group, anon, [])).mine == []
    assert await counts(alice, group, anon) == [0, 0]
    await carol.sync()
    assert (await carol.polls.view(group, anon)).voters == 0


@pytest.mark.asyncio
async def test_a_close_that_overtakes_its_poll_closes_it_when_it_comes(people: People) -> None:
    """The creator's close can reach a client before the poll (another of the creator's
    devices, a sender-key chain): it is kept, and the poll arrives closed. A close by
    anyone else, sent first, does not close it."""
    import os

    alice, bob = await people("alice", "bob")
    first, second = os.urandom(16), os.urandom(16)
    await send_raw(bob, alice.user, c.PollClose(poll=second))  # not bob's poll to close
    await bob.sync()  # (flushes bob's outbox)
    await send_raw(alice, bob.user, c.PollClose(poll=first))
    for poll_id in (first, second):
        await send_raw(alice, bob.user, c.Poll(id=poll_id, question="Lunch?",
                                               options=["a", "b"], sent_at=1))
    await alice.sync()
    await bob.sync()
    assert (await bob.polls.view(alice.user, first)).closed is True
    assert (await bob.polls.view(alice.user, second)).closed is False
    assert (await bob.polls.vote(alice.user, second, [1])).counts == [0, 1]  # still open
    # nothing is left waiting: the kept close went with its poll
    assert not await bob.cache.polls.closed_early(alice.user, first, alice.user)
