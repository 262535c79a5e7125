"""The cluster's chores (expiry sweep, retention, story sweep, rate-limit pruning) run on
one node, not on each (issue 14), and another node takes them over when that one dies:
three real relay nodes on one PostgreSQL database and NATS, sweeping every second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench._postgres import scratch_database
from tests.support.nodes import Nodes
from tests.support.wsclient import async_test

pytestmark = pytest.mark.slow

SWEEPS = 'tenchat_relay_chore_runs_total{chore="expiry sweep"}'


@pytest.fixture
def database(postgres_service: str) -> Iterator[str]:
    with scratch_database(postgres_service) as url:
        yield url


@async_test
async def test_sweeps_run_on_one_node_and_move_when_it_dies(
        tmp_path: Path, database: str, nats_service: str) -> None:
    nodes = Nodes(tmp_path, database, nats_service,
                  env={"TENCHAT_RELAY_SWEEP_INTERVAL": "1"})
    nodes.start()
    try:
        sweeps: list[float] = []  # expiry sweep passes each node ran

        async def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
            async with asyncio.timeout(timeout):
                while True:
                    sweeps[:] = [await asyncio.to_thread(nodes.metric, i, SWEEPS)
                                 for i in range(3)]
                    if check():
                        return
                    await asyncio.sleep(0.2)

        await until(lambda: max(sweeps) >= 3)
        leader = sweeps.index(max(sweeps))
        assert sorted(sweeps)[:2] == [0, 0], sweeps  # the others never swept
        health = await nodes.health()
        assert [body["leader"] for _, body in health] == [i == leader for i in range(3)]

        killed_at = time.monotonic()
        nodes.relays[leader].kill()  # its session ends: PostgreSQL frees the lead
        await until(lambda: sum(s >= 1 for s in sweeps) == 1)
        print(f"the sweeps moved {time.monotonic() - killed_at:.1f} s after the kill")
        await until(lambda: max(sweeps) >= 2)
        heir = sweeps.index(max(sweeps))
        assert heir != leader and sorted(sweeps)[:2] == [0, 0], sweeps
        alive = [i for i in range(3) if i != leader]
        health = [await asyncio.to_thread(nodes.healthz, i) for i in alive]
        assert [body["leader"] for _, body in health] == [i == heir for i in alive]
    finally:
        nodes.stop()
