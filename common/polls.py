"""Poll rules, pure: which votes count and what they add up to.

The client core (client.polls) stores polls and votes; these functions decide.
Rules: one vote per member (a later one, by the voter's clock, replaces the
earlier), a vote for an option that doesn't exist (or several options in a
single-choice poll, or the same option twice) is ignored whole, and so is any
vote applied after the poll was closed. Membership is checked by the caller,
which knows the conversation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = ["valid_choices", "replaces", "tally", "voters_by_option"]


def valid_choices(choices: Sequence[int], options: int, multiple: bool) -> bool:
    """Are ``choices`` (0-based) a vote this poll accepts? An empty list takes a vote back."""
    if len(set(choices)) != len(choices):
        return False
    if not multiple and len(choices) > 1:
        return False
    return all(0 <= i < options for i in choices)


def replaces(new_at: int, old_at: int | None) -> bool:
    """Does a vote made at ``new_at`` replace the voter's stored one made at ``old_at``?
    Equal times: the one applied last wins."""
    return old_at is None or new_at >= old_at


def tally(votes: Iterable[Sequence[int]], options: int, multiple: bool) -> tuple[list[int], int]:
    """(count per option, number of voters) over each voter's current choices."""
    counts = [0] * options
    voters = 0
    for choices in votes:
        if not choices or not valid_choices(choices, options, multiple):
            continue
        voters += 1
        for i in choices:
            counts[i] += 1
    return counts, voters


def voters_by_option(votes: Mapping[bytes, Sequence[int]], options: int,
                     multiple: bool) -> list[list[bytes]]:
    """For a named poll: who chose each option, in the order of ``votes``."""
    out: list[list[bytes]] = [[] for _ in range(options)]
    for voter, choices in votes.items():
        if choices and valid_choices(choices, options, multiple):
            for i in choices:
                out[i].append(voter)
    return out
