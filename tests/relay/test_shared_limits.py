"""SharedBuckets' rules without a database (relay/shared_limits.py): the database's
answers are computed here as rates.py computes them (a bucket refilled by the clock,
what was spent taken), so the node-side rules — when to report, how much to spend
between reports, what a failed report keeps — are tested alone, with a moved clock."""

from __future__ import annotations

from dataclasses import dataclass

from tenchat.relay.shared_limits import FLUSH, SharedBuckets


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


class Bucket:
    """The database's side of one key: tokens refilled at ``rate`` up to ``burst``."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.stamp = burst, clock.now
        self.nodes: set[int] = set()

    def spend(self, node: int, spent: float) -> tuple[float, bool]:
        now = self.clock.now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate) - spent
        self.stamp = now
        self.nodes.add(node)
        return self.tokens, len(self.nodes) > 1


def report(node: int, buckets: SharedBuckets, db: Bucket) -> int:
    sent = buckets.report()
    for key, spent in sent:
        balance, shared = db.spend(node, spent)
        buckets.learned(key, spent, balance, shared, db.clock.now)
    return len(sent)


def spend_all(buckets: SharedBuckets, key: bytes) -> int:
    n = 0
    while buckets.take(key) == 0.0:
        n += 1
    return n


def test_a_key_used_lightly_is_never_reported() -> None:
    clock = Clock()
    buckets = SharedBuckets("frames", 20_000, 40_000, lambda: 3, clock)
    for _ in range(1000):
        assert buckets.take(b"alice") == 0.0
        clock.now += 0.01
    assert buckets.report() == []  # 1,000 frames: under burst / (4 × 3), no query


def test_two_nodes_on_one_key_share_one_bucket() -> None:
    clock = Clock()
    db = Bucket(10, 100, clock)
    a = SharedBuckets("frames", 10, 100, lambda: 2, clock)
    b = SharedBuckets("frames", 10, 100, lambda: 2, clock)
    # nothing known yet: each node takes what it may before a report confirms it
    due = a.due(2)
    assert due == 12.5
    assert spend_all(a, b"k") == spend_all(b, b"k") == 2 * due
    assert a.take(b"k") >= FLUSH  # retry_after: at least a report's time
    assert report(0, a, db) == 1 and report(1, b, db) == 1
    assert db.tokens == 50
    # b learned that a spends on the key too: its share is half of what is left
    assert spend_all(b, b"k") == 25
    report(1, b, db)
    report(0, a, db)  # (nothing due: a learns at its next report)
    assert spend_all(a, b"k") == 2 * due  # a's view is stale: 75, not shared, but capped
    report(0, a, db)
    assert db.tokens == 0 and a.take(b"k") > 0  # now a knows


def test_the_sum_over_nodes_stays_within_one_bucket_over_time() -> None:
    clock = Clock()
    rate, burst = 20.0, 40.0
    db = Bucket(rate, burst, clock)
    nodes = [SharedBuckets("frames", rate, burst, lambda: 3, clock) for _ in range(3)]
    taken = 0
    seconds = 10.0
    steps = int(seconds / FLUSH)
    for _ in range(steps):
        for node in nodes:  # each node takes whatever it may, as fast as it can
            taken += spend_all(node, b"k")
        clock.now += FLUSH
        for i, node in enumerate(nodes):
            report(i, node, db)
    allowed = burst + rate * seconds
    unreported = 3 * nodes[0].due(3)  # spent by the nodes but not reported yet, at most
    assert allowed * 0.7 <= taken <= allowed + unreported, (taken, allowed)


def test_a_single_node_gets_the_whole_rate_when_nobody_shares() -> None:
    clock = Clock()
    rate, burst = 20.0, 40.0
    db = Bucket(rate, burst, clock)
    node = SharedBuckets("frames", rate, burst, lambda: 3, clock)  # three nodes up
    taken = 0
    for _ in range(100):  # 10 s
        taken += spend_all(node, b"k")
        clock.now += FLUSH
        report(0, node, db)
    assert taken >= 0.9 * (burst + rate * 10)  # not a third of it


def test_a_failed_report_keeps_what_was_spent() -> None:
    clock = Clock()
    buckets = SharedBuckets("frames", 1, 4, lambda: 1, clock)
    assert spend_all(buckets, b"k") == 4
    ((key, spent),) = buckets.report()
    buckets.learned(key, spent, None, False, clock.now)  # the database out of reach
    assert buckets.report() == [(b"k", 4.0)]  # reported again next time
    assert buckets.take(b"k") > 0  # and still counted meanwhile
