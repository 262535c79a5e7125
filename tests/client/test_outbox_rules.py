"""The outbox's rules (client/outbox.py), driven directly: no relay, no cache.
tests/client/test_outbox_stateful.py checks the whole outbox with a relay and crashes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenchat.client.connection import RelayError
from tenchat.client.errors import GroupError, PeerError
from tenchat.client.outbox import DIRECT, GROUP, WAITING, Flush, Item, Sealing
from tenchat.common.errors import ErrorCode

A, B = b"a" * 32, b"b" * 32
TEAM = b"t" * 16


def mid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def item(n: int, peer: bytes = A, kind: str = DIRECT) -> Item:
    return Item(mid(n), peer, b"envelope", kind, 0, kind != "group")


def refused(code: ErrorCode) -> RelayError:
    return RelayError(code, "refused")


def test_a_peer_without_a_session_holds_back_its_later_items_only() -> None:
    sealing = Sealing()
    assert sealing.should_seal(mid(1), A)
    sealing.could_not_seal(mid(1), A, PeerError("no prekeys"))
    assert not sealing.should_seal(mid(2), A)  # after a failed one: keeps the order
    assert sealing.should_seal(mid(3), B)  # another peer goes on
    assert str(sealing.failed[mid(1)]) == "no prekeys"
    assert str(sealing.failed[mid(2)]) == WAITING
    assert mid(3) not in sealing.failed


@given(st.lists(st.tuples(st.sampled_from([A, B]), st.booleans()), max_size=30))
def test_sealing_keeps_each_peers_order(queue: list[tuple[bytes, bool]]) -> None:
    """Whatever fails: a peer's items are sealed as a prefix of its queue, never one
    after a gap (the peer would read them out of order)."""
    sealing = Sealing()
    sealed: dict[bytes, list[int]] = {A: [], B: []}
    for n, (peer, works) in enumerate(queue):
        if not sealing.should_seal(mid(n), peer):
            continue
        if works:
            sealed[peer].append(n)
        else:
            sealing.could_not_seal(mid(n), peer, PeerError("no"))
    for peer, ns in sealed.items():
        mine = [n for n, (p, _w) in enumerate(queue) if p == peer]
        assert ns == mine[:len(ns)]
    assert set(sealing.failed) | {mid(n) for ns in sealed.values() for n in ns} == {
        mid(n) for n in range(len(queue))}


def test_stored_items_leave_and_refusals_stay_queued() -> None:
    flush = Flush([item(1), item(2), item(3, B)])
    flush.answered(item(1))
    flush.answered(item(2), refused(ErrorCode.RATE_LIMITED))
    flush.answered(item(3, B))
    assert flush.stored == [item(1), item(3, B)]
    assert flush.left_groups == []
    error = flush.error()
    assert isinstance(error, RelayError) and error.code == ErrorCode.RATE_LIMITED


def test_a_group_that_refuses_us_is_left_and_its_message_dropped() -> None:
    flush = Flush([item(1, TEAM, GROUP), item(2)])
    flush.answered(item(1, TEAM, GROUP), refused(ErrorCode.FORBIDDEN))
    flush.answered(item(2))
    assert flush.left_groups == [item(1, TEAM, GROUP)]
    assert isinstance(flush.error(), GroupError)
    assert "no longer a member" in str(flush.error())


def test_a_forbidden_one_to_one_send_is_an_error_not_a_group_left() -> None:
    flush = Flush([item(1)])
    flush.answered(item(1), refused(ErrorCode.FORBIDDEN))
    assert flush.left_groups == [] and isinstance(flush.error(), RelayError)


def test_a_flush_with_every_item_stored_has_no_error() -> None:
    flush = Flush([item(1), item(2)])
    for i in flush.items:
        flush.answered(i)
    assert flush.error() is None and len(flush.stored) == 2
