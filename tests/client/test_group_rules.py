"""The group log's routing rules (client/group_rules.py), driven directly: posts are
judged by the membership at their point of the log (group changes racing posts), changes
apply in version order."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenchat.client.group_rules import Route, route, route_change
from tenchat.common import frames as f
from tenchat.common.groups import ADMIN, MEMBER, OWNER, GroupState

ME, BOB, CAROL, MALLORY = b"a" * 32, b"b" * 32, b"c" * 32, b"m" * 32
GROUP = b"g" * 16
STATE = GroupState(group=GROUP, version=3, roles={ME: OWNER, BOB: ADMIN, CAROL: MEMBER})


def post(sender: bytes, gseq: int = 5) -> f.GroupDeliver:
    return f.GroupDeliver(group=GROUP, gseq=gseq, msg=b"x" * 16, sender=sender, at=1,
                          body=b"sealed")


def change(gseq: int = 5) -> f.GroupDeliver:
    return f.GroupDeliver(group=GROUP, gseq=gseq, msg=b"x" * 16, sender=BOB, at=1,
                          body=b"record", change=True)


@pytest.mark.parametrize(("sender", "expected"), [
    (BOB, Route.POST), (CAROL, Route.POST), (MALLORY, Route.DROP_NON_MEMBER),
])
def test_posts_by_membership(sender: bytes, expected: Route) -> None:
    assert route(STATE, ME, post(sender)) is expected
    assert route(STATE, ME, post(sender), have=True) is expected  # (only ours are skipped)


def test_our_own_post_is_skipped_unless_another_device_of_ours_sent_it() -> None:
    assert route(STATE, ME, post(ME), have=True) is Route.OWN  # sent from here: cached
    assert route(STATE, ME, post(ME), have=False) is Route.POST  # our other device's
    assert route(STATE, ME, post(ME, gseq=0)) is Route.OWN  # our other device typing


def test_a_post_in_a_group_we_dont_know_is_dropped() -> None:
    assert route(None, ME, post(BOB)) is Route.DROP_NON_MEMBER


@pytest.mark.parametrize(("sender", "expected"), [
    (ME, Route.OWN), (BOB, Route.POST), (CAROL, Route.DROP_ANNOUNCE),
])
def test_in_an_announcement_group_only_admins_post(sender: bytes, expected: Route) -> None:
    assert route(replace(STATE, announce=True), ME, post(sender), have=True) is expected


@pytest.mark.parametrize(("sender", "expected"), [
    (BOB, Route.EPHEMERAL), (MALLORY, Route.DROP_NON_MEMBER), (ME, Route.OWN),
])
def test_an_unstored_push_is_ephemeral(sender: bytes, expected: Route) -> None:
    assert route(STATE, ME, post(sender, gseq=0)) is expected


@pytest.mark.parametrize(("version", "expected"), [
    (1, Route.CHANGE_STALE), (3, Route.CHANGE_STALE), (4, Route.CHANGE_NEXT),
    (5, Route.CHANGE_FETCH), (40, Route.CHANGE_FETCH), (None, Route.CHANGE_BAD),
])
def test_changes_apply_in_version_order(version: int | None, expected: Route) -> None:
    assert route(STATE, ME, change(), version) is expected
    assert route_change(STATE, version) is expected


@pytest.mark.parametrize("version", [1, 2, 9])
def test_a_change_of_a_group_new_to_us_fetches_the_chain(version: int) -> None:
    assert route(None, ME, change(), version) is Route.CHANGE_FETCH


def test_a_post_racing_the_change_that_removed_its_author() -> None:
    """Carol posts; a change removes her. Before the change her post counts; once it is
    applied, a post of hers that the relay orders after it is dropped."""
    before = STATE
    after = replace(STATE, version=4, roles={ME: OWNER, BOB: ADMIN})
    assert route(before, ME, post(CAROL, gseq=5)) is Route.POST
    assert route_change(before, after.version) is Route.CHANGE_NEXT
    assert route(after, ME, post(CAROL, gseq=7)) is Route.DROP_NON_MEMBER


def test_a_post_racing_the_change_that_added_its_author() -> None:
    before = STATE
    after = replace(STATE, version=4, roles={**STATE.roles, MALLORY: MEMBER})
    assert route(before, ME, post(MALLORY)) is Route.DROP_NON_MEMBER
    assert route(after, ME, post(MALLORY)) is Route.POST


# A log: ("add" | "remove", who) changes and ("post", who) entries in the relay's order.
LOG = st.lists(st.tuples(st.sampled_from(["add", "remove", "post", "post", "post"]),
                         st.sampled_from([BOB, CAROL, MALLORY])), max_size=30)


@settings(max_examples=200, deadline=None)
@given(LOG, st.booleans())
def test_a_post_counts_exactly_when_its_author_is_a_member_at_that_point(
        log: list[tuple[str, bytes]], announce: bool) -> None:
    state = replace(STATE, version=1, roles={ME: OWNER, BOB: MEMBER}, announce=announce)
    members = dict(state.roles)
    for gseq, (kind, who) in enumerate(log, start=1):
        if kind == "post":
            got = route(state, ME, post(who, gseq))
            may = who in members and (not announce or members[who] in (OWNER, ADMIN))
            assert (got is Route.POST) == may
            assert got in (Route.POST, Route.DROP_NON_MEMBER, Route.DROP_ANNOUNCE)
        else:
            assert route(state, ME, change(gseq), state.version + 1) is Route.CHANGE_NEXT
            if kind == "add":
                members[who] = MEMBER
            else:
                members.pop(who, None)
            state = replace(state, version=state.version + 1, roles=dict(members))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 50), st.integers(0, 60), st.booleans())
def test_every_change_version_has_one_route(have: int, version: int, known: bool) -> None:
    state = replace(STATE, version=have) if known else None
    got = route_change(state, version)
    if known and version <= have:
        assert got is Route.CHANGE_STALE
    elif known and version == have + 1:
        assert got is Route.CHANGE_NEXT
    else:
        assert got is Route.CHANGE_FETCH
