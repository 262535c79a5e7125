"""Limits that hold over a cluster's nodes, not per node (issue 14): two real relay
nodes on one PostgreSQL database and NATS, one identity connected to both, sending as
fast as it can — the sum it gets through stays within its one bucket (rate_user,
burst_user), where per-node buckets in memory would let through twice as much."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._postgres import scratch_database
from tenchat.common.frames import Error, PresenceState, Watch
from tests.support.nodes import Nodes
from tests.support.wsclient import RelayClient, async_test, new_key

pytestmark = pytest.mark.slow

RATE, BURST = 20, 40  # frames a second for one identity, and at once


@pytest.fixture
def database(postgres_service: str) -> Iterator[str]:
    with scratch_database(postgres_service) as url:
        yield url


async def hammer(client: RelayClient, until: float, answers: Counter[str]) -> None:
    """Frames (a cheap one: an empty watch list) back to back until ``until``."""
    while time.monotonic() < until:
        answer = await client.call(Watch, users=[])
        if isinstance(answer, Error):
            answers[answer.error] += 1
        else:
            assert isinstance(answer, PresenceState), answer
            answers["ok"] += 1


@async_test
async def test_an_identity_s_frame_rate_holds_over_the_sum_of_two_nodes(
        tmp_path: Path, database: str, nats_service: str) -> None:
    env = {"TENCHAT_RELAY_RATE_USER": str(RATE), "TENCHAT_RELAY_BURST_USER": str(BURST)}
    nodes = Nodes(tmp_path, database, nats_service, n=2, env=env)
    nodes.start()
    try:
        await nodes.health_until(lambda body: body.get("nodes") == 2)
        key = new_key()
        clients = [await RelayClient.login(url, key, nodes.name) for url in nodes.urls]
        answers: Counter[str] = Counter()
        started = time.monotonic()
        until = started + 3.0
        await asyncio.gather(*(hammer(c, until, answers) for c in clients for _ in range(3)))
        elapsed = time.monotonic() - started
        allowed = BURST + RATE * elapsed  # one bucket for the identity
        print(f"{answers['ok']} frames through of {answers.total()} in {elapsed:.2f} s;"
              f" one bucket allows {allowed:.0f}, a bucket per node {2 * allowed:.0f}")
        assert answers["rate_limited"] > 0 and set(answers) == {"ok", "rate_limited"}
        # Over: at most what the nodes spent unreported (2 × BURST/8) and a report's
        # worth of refill each; under: the share each node may spend is the whole.
        assert answers["ok"] <= allowed + BURST / 2, answers
        assert answers["ok"] >= 0.75 * allowed, answers
        for c in clients:
            await c.close()
    finally:
        nodes.stop()
