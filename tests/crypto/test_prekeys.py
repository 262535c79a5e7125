"""Prekey upkeep policy (common/crypto/prekeys.py): pure, time passed in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenchat.common.crypto.prekeys import (
    DAY_MS,
    PrekeyPolicy,
    otks_to_delete,
    spk_rotation_due,
    spks_to_delete,
)

P = PrekeyPolicy()  # weekly rotation, 30 days' grace, 200 handed-out keys kept
T0 = 1_700_000_000_000


def test_rotation_is_weekly_by_default_and_configurable() -> None:
    assert spk_rotation_due([], T0, P)  # none yet
    spks = [(1, T0)]
    assert not spk_rotation_due(spks, T0 + 7 * DAY_MS - 1, P)
    assert spk_rotation_due(spks, T0 + 7 * DAY_MS, P)
    daily = PrekeyPolicy(rotate_ms=DAY_MS)
    assert spk_rotation_due(spks, T0 + DAY_MS, daily)
    # the newest (highest id) decides, whatever the order given
    assert not spk_rotation_due([(2, T0 + 6 * DAY_MS), (1, T0)], T0 + 8 * DAY_MS, P)
    assert not spk_rotation_due(spks, T0 - DAY_MS, P)  # a clock that went back: no churn


def test_replaced_signed_prekeys_go_after_their_grace_the_newest_never() -> None:
    spks = [(1, T0), (2, T0 + 7 * DAY_MS), (3, T0 + 14 * DAY_MS)]
    assert spks_to_delete(spks, T0 + 7 * DAY_MS + 30 * DAY_MS - 1, P) == []
    assert spks_to_delete(spks, T0 + 37 * DAY_MS, P) == [1]  # 30 days after 2 was made
    assert spks_to_delete(spks, T0 + 10_000 * DAY_MS, P) == [1, 2]
    assert spks_to_delete([(1, T0)], T0 + 10_000 * DAY_MS, P) == []


def test_one_time_prekeys_keep_what_the_relay_holds_and_a_few_handed_out() -> None:
    ids = list(range(1, 1001))  # 1000 private keys; the relay says it holds 100
    gone = otks_to_delete(ids, 100, P)
    assert gone == list(range(1, 701))  # kept: 901-1000 (on the relay) + 701-900 (handed out)
    assert otks_to_delete(ids, 1000, P) == []
    assert otks_to_delete(range(1, 51), 0, P) == []  # fewer than keep_taken handed out


@given(st.sets(st.integers(0, 2**32 - 1), max_size=400), st.integers(0, 500),
       st.integers(0, 300))
def test_otk_deletion_is_bounded_and_never_touches_the_relays_keys(
        ids: set[int], relay_count: int, keep_taken: int) -> None:
    policy = PrekeyPolicy(keep_taken=keep_taken)
    gone = otks_to_delete(ids, relay_count, policy)
    kept = ids - set(gone)
    assert set(gone) <= ids
    assert len(kept) == min(len(ids), relay_count + keep_taken)  # bounded
    newest = sorted(ids, reverse=True)[:relay_count]
    assert set(newest) <= kept  # what the relay may still hand out is never deleted
    assert all(k > g for k in kept for g in gone)  # the oldest go first
