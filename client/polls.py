"""Polls in 1:1 and group conversations: create, vote, close, show; and what peers' poll
content does here.

A poll travels as a message (common.content.Poll) through the normal paths: the
pairwise Double Ratchet in 1:1, the sender key in a group. Votes on a *named* poll go
to the whole conversation and every client counts them (common.polls). Votes on an
*anonymous* poll go 1:1 to the poll's creator only; the creator counts them and sends
the conversation a PollTally (counts only) after each batch. See docs/crypto.md
("Polls") for what that hides and from whom.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..common import content as c
from ..common import polls as rules
from ..common.errors import TenchatError
from ..common.groups import GroupState
from .cache import MessageRow, PollRow
from .conv import is_group
from .events import Event
from .groups import GroupError
from .poll_rules import (
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
from .rules import Incoming

if TYPE_CHECKING:
    from .base import Receipts
    from .service import Client

__all__ = ["PollService", "PollView", "PollError", "poll_text"]


class PollError(TenchatError):
    """A poll operation that can't be done: no such poll, closed, not yours, bad choices."""


@dataclass(frozen=True, slots=True)
class PollView:
    """A poll as this client shows it."""

    conv: bytes
    id: bytes
    creator: bytes
    question: str
    options: list[str]
    multiple: bool
    anonymous: bool
    closed: bool
    counts: list[int]
    voters: int  # members who voted
    mine: list[int]  # our own current choices (0-based); empty: not voted
    names: list[list[bytes]] | None  # named polls: who chose each option; None if anonymous


def check_poll(question: str, options: list[str]) -> None:
    if not question.strip():
        raise PollError("a poll needs a question")
    if len(question) > c.MAX_QUESTION:
        raise PollError(f"the question is too long (at most {c.MAX_QUESTION} characters)")
    if not 2 <= len(options) <= c.MAX_POLL_OPTIONS:
        raise PollError(f"a poll has 2 to {c.MAX_POLL_OPTIONS} options, not {len(options)}")
    for option in options:
        if not option.strip():
            raise PollError("an option can't be empty")
        if len(option) > c.MAX_OPTION:
            raise PollError(f"option {option[:20]!r}… is too long "
                            f"(at most {c.MAX_OPTION} characters)")
    if len({o.strip().lower() for o in options}) != len(options):
        raise PollError("two options are the same")


class PollService:
    def __init__(self, client: Client) -> None:
        self.c = client
        self._tally_due: set[tuple[bytes, bytes]] = set()  # anonymous polls of ours to publish

    # --- our actions --------------------------------------------------------------------

    async def create(self, conv: bytes, question: str, options: list[str], *,
                     multiple: bool = False, anonymous: bool = False) -> MessageRow:
        """Send a poll to a conversation (a user id or a group id); its message row."""
        options = [o.strip() for o in options]
        question = question.strip()
        check_poll(question, options)
        await self._check_can_send(conv)
        from .base import now_ms

        msg_id = os.urandom(16)
        now = now_ms()
        body = c.encode_content(c.Poll(id=msg_id, question=question, options=options,
                                       sent_at=now, multiple=multiple, anonymous=anonymous))

        async def also() -> None:
            await self.c.cache.polls.put(conv, msg_id, self.c.user, question, options,
                                        multiple, anonymous)

        message = await self.c.queue_message(conv, msg_id, now, 0, body, poll_text(question),
                                              reply_to=None, also=also)
        return await self.c.send_queued(conv, message)

    async def vote(self, conv: bytes, poll_id: bytes, choices: list[int]) -> PollView:
        """Vote (0-based option indexes; an empty list takes our vote back)."""
        poll = await self._poll(conv, poll_id)
        if poll.closed:
            raise PollError("this poll is closed")
        if not rules.valid_choices(choices, len(poll.options), poll.multiple):
            if not poll.multiple and len(choices) > 1:
                raise PollError("this poll takes one choice")
            raise PollError(f"choose options 1 to {len(poll.options)}, each once")
        from .base import now_ms

        at = now_ms()
        group = conv if is_group(conv) else None
        vote = c.Vote(poll=poll_id, choices=list(choices), at=at)

        async def local() -> None:
            await self.c.cache.polls.put_vote(conv, poll_id, self.c.user, list(choices), at)

        if not poll.anonymous:
            await self.c.act(conv, vote, local)
        elif poll.creator == self.c.user:  # our own anonymous poll: count it, publish
            votes = await self.c.cache.polls.votes(conv, poll_id)
            votes[self.c.user] = list(choices)
            await self.c.act(conv, self._tally_content(poll, votes), local)
        else:  # anonymous: to the creator only
            vote = c.Vote(poll=poll_id, choices=list(choices), at=at, group=group)
            await self.c.act(conv, vote, local, to=poll.creator)
        return await self.view(conv, poll_id)

    async def close(self, conv: bytes, poll_id: bytes) -> PollView:
        """Close our poll. Offline, first catch up with the relay (best effort), so that
        votes cast before the close count here as they do for every member."""
        from .connection import ConnectionLost, RelayUnreachable
        from .events import ONLINE

        if self.c.connection_state != ONLINE:
            with contextlib.suppress(RelayUnreachable, ConnectionLost):
                await self.c.sync()
        poll = await self._poll(conv, poll_id)
        if poll.creator != self.c.user:
            raise PollError("only the poll's creator can close it")
        if poll.closed:
            raise PollError("this poll is already closed")

        async def local() -> None:
            await self.c.cache.polls.close(conv, poll_id)

        await self.c.act(conv, c.PollClose(poll=poll_id), local)
        return await self.view(conv, poll_id)

    async def view(self, conv: bytes, poll_id: bytes) -> PollView:
        poll = await self._poll(conv, poll_id)
        votes = await self.c.cache.polls.votes(conv, poll_id)
        n = len(poll.options)
        mine = votes.get(self.c.user, [])
        if not rules.valid_choices(mine, n, poll.multiple):
            mine = []
        if poll.anonymous and poll.creator != self.c.user:
            counts = list(poll.tally) if poll.tally and len(poll.tally) == n else [0] * n
            return PollView(conv, poll_id, poll.creator, poll.question, poll.options,
                            poll.multiple, True, poll.closed, counts, poll.tally_voters,
                            mine, None)
        counts, voters = rules.tally(votes.values(), n, poll.multiple)
        names = None if poll.anonymous else rules.voters_by_option(votes, n, poll.multiple)
        return PollView(conv, poll_id, poll.creator, poll.question, poll.options,
                        poll.multiple, poll.anonymous, poll.closed, counts, voters, mine, names)

    async def views(self, conv: bytes, ids: list[bytes]) -> dict[bytes, PollView]:
        """The polls among these messages (for a UI page)."""
        return {i: await self.view(conv, i) for i in await self.c.cache.polls.among(conv, ids)}

    async def _poll(self, conv: bytes, poll_id: bytes) -> PollRow:
        poll = await self.c.cache.polls.get(conv, poll_id)
        if poll is None:
            raise PollError("no such poll in this conversation")
        return poll

    async def _check_can_send(self, conv: bytes) -> None:
        from .errors import PeerError

        if is_group(conv):
            return  # groups.queue checks membership and announcement-only groups
        contact = await self.c.cache.contacts.get(conv)
        if contact is not None and contact.blocked:
            raise PeerError(f"@{contact.handle} is blocked; unblock them to send")

    def _tally_content(self, poll: PollRow, votes: dict[bytes, list[int]]) -> c.PollTally:
        from .base import now_ms

        counts, voters = rules.tally(votes.values(), len(poll.options), poll.multiple)
        return c.PollTally(poll=poll.id, counts=counts, voters=voters, at=now_ms())

    # --- what peers send (the caller holds the cache lock and commits) --------------------

    async def apply(self, conv: bytes, author: bytes, content: c.Content,
                    group: GroupState | None, new: list[MessageRow], receipts: Receipts,
                    events: list[Event]) -> None:
        """A peer's poll content: the rules decide (client/poll_rules.py), this reads
        their facts first and writes their effects."""
        item = Incoming(conv, author, content, group)
        effects = apply_poll(await self._facts(item), item)
        cache = self.c.cache
        stored: dict[bytes, MessageRow] = {}
        for w in effects.writes:
            match w:
                case AddPoll(row, creator, question, options, multiple, anonymous, closed):
                    if (kept := await cache.messages.add_stored(row)) is not None:
                        await cache.polls.put(row.peer, row.id, creator, question, options,
                                              multiple, anonymous)
                        if closed:
                            await cache.polls.close(row.peer, row.id)
                        await cache.polls.forget_early_closes(row.peer, row.id)
                        stored[row.id] = kept
                case PutVote(in_conv, poll, voter, choices, at):
                    await cache.polls.put_vote(in_conv, poll, voter, choices, at)
                case ClosePoll(in_conv, poll):
                    await cache.polls.close(in_conv, poll)
                case KeepEarlyClose(in_conv, poll, closer, at):
                    await cache.polls.keep_early_close(in_conv, poll, closer, at)
                case PutTally(in_conv, poll, counts, voters, at):
                    await cache.polls.put_tally(in_conv, poll, counts, voters, at)
                case TallyDue(in_conv, poll):
                    self._tally_due.add((in_conv, poll))
        effects.deliver(stored, new, receipts, events)

    async def _facts(self, item: Incoming) -> PollFacts:
        from .base import now_ms

        content, cache = item.content, self.c.cache
        base = PollFacts(self.c.user, now_ms())
        match content:
            case c.Poll():
                return replace(base, known=await cache.messages.get(item.conv, content.id)
                               is not None,
                               closed_early=await cache.polls.closed_early(
                                   item.conv, content.id, item.author))
            case c.Vote():
                counted_in = vote_conv(item)
                if counted_in is None:
                    return base
                members = None
                if content.group is not None:
                    state = await self.c.groups.state(content.group)
                    members = frozenset(state.roles) if state is not None else None
                return replace(base, poll=await cache.polls.get(counted_in, content.poll),
                               members=members,
                               vote_at=await cache.polls.vote_at(counted_in, content.poll,
                                                                 item.author))
            case c.PollClose() | c.PollTally():
                return replace(base, poll=await cache.polls.get(item.conv, content.poll))
        return base

    async def publish_due(self) -> None:
        """Queue a fresh tally for each of our anonymous polls that got votes (caller holds
        the cache lock and commits)."""
        due, self._tally_due = self._tally_due, set()
        for conv, poll_id in sorted(due):
            poll = await self.c.cache.polls.get(conv, poll_id)
            if poll is None:
                continue
            tally = self._tally_content(poll, await self.c.cache.polls.votes(conv, poll_id))
            body = c.encode_content(tally)
            if is_group(conv):
                try:
                    await self.c.groups.queue(conv, os.urandom(16), body)
                except GroupError:
                    continue  # we left the group: nobody to tell
            else:
                await self.c.queue_content(conv, os.urandom(16), body)
