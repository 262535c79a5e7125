"""The group log's routing rules, without I/O: what one entry of a group's log does here,
given the group's verified state (in the style of client/rules.py).

The relay orders a group's log but can't be trusted with who may post: each post is
checked against the membership the signed chain gives *at that point of the log*, so a
post racing a change that removed its author is dropped once the change is applied, and
a post that came before it counts. Changes apply in version order: an old one is
ignored, the next one applies, one from further ahead (or of a group new to us) makes
the client fetch and verify the chain from the relay. Tested directly by
tests/client/test_group_rules.py; GroupService.receive_one acts on the route.
"""

from __future__ import annotations

from enum import Enum

from ..common import frames as f
from ..common.groups import GroupState, can_post

__all__ = ["Route", "route", "route_change"]


class Route(Enum):
    DROP_NON_MEMBER = "a post from someone the chain says is not a member"
    DROP_ANNOUNCE = "a post by a plain member in an announcement group"
    OWN = "our own post, already in the cache (or our other device typing)"
    EPHEMERAL = "an unstored push: only a typing indicator counts"
    POST = "a member's post (or one our other device sent): decrypt it"
    CHANGE_STALE = "a change we have (ours, or already applied)"
    CHANGE_NEXT = "the next change: verify and apply it"
    CHANGE_FETCH = "a change from further ahead, or of a group new to us: fetch the chain"
    CHANGE_BAD = "a record that can't be decoded"


def route_change(state: GroupState | None, version: int | None) -> Route:
    """Where a change record of ``version`` (None: undecodable) goes."""
    if version is None:
        return Route.CHANGE_BAD
    if state is not None and version <= state.version:
        return Route.CHANGE_STALE
    if state is None or version > state.version + 1:
        return Route.CHANGE_FETCH
    return Route.CHANGE_NEXT


def route(state: GroupState | None, me: bytes, entry: f.GroupDeliver,
          change_version: int | None = None, *, have: bool = False) -> Route:
    """Where ``entry`` goes, given the group's state before it (None: a group we don't
    know), for a change the version its record names, and for a post whether the cache
    already has a message with its id (``have``: our own post, sent from this device)."""
    if entry.change:
        return route_change(state, change_version)
    if state is None or entry.sender not in state.roles:
        return Route.DROP_NON_MEMBER
    if not can_post(state.roles[entry.sender], state.announce):
        return Route.DROP_ANNOUNCE
    if entry.sender == me and (entry.gseq == 0 or have):
        return Route.OWN
    return Route.EPHEMERAL if entry.gseq == 0 else Route.POST
