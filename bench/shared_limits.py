"""What cluster-wide rate limits cost (relay/shared_limits.py, docs/design.md).

    python -m bench.shared_limits [--url postgresql://postgres@127.0.0.1/test] [--runs 5]

- **take**: the per-frame check, in-memory buckets (one node, SQLite) against shared
  ones (PostgreSQL), for a key used lightly (never reported: every identity under the
  default limits) — ns per call, this process;
- **report**: one report statement (``spend_limits``) for 1, 100 and 1,000 keys due, on
  a scratch database — ms per statement (wall) and this process's CPU-ms, and the
  PostgreSQL server's CPU-ms (every local ``postgres`` process).

Medians of ``--runs`` runs. Uses ``TENCHAT_TEST_POSTGRES`` when ``--url`` is not given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import timeit

from ._postgres import ServerCpu, scratch_database


def take_ns(runs: int) -> tuple[float, float]:
    from tenchat.relay.limits import UserBuckets
    from tenchat.relay.shared_limits import SharedBuckets

    local = UserBuckets(20_000, 40_000)
    shared = SharedBuckets("frames", 20_000, 40_000, lambda: 3)
    keys = [os.urandom(32) for _ in range(1000)]
    n = 200_000

    def run(buckets: UserBuckets | SharedBuckets) -> float:
        take = buckets.take
        return timeit.timeit(lambda: [take(k) for k in keys], number=n // len(keys)) / n * 1e9

    a, b = [], []
    for _ in range(runs):  # interleaved, A/B
        a.append(run(local))
        b.append(run(shared))
    return statistics.median(a), statistics.median(b)


async def report_ms(url: str, keys: int, runs: int) -> tuple[float, float, float]:
    from tenchat.relay.storage.postgres import PostgresStore

    server = ServerCpu()
    walls, cpus, server_cpus = [], [], []
    calls = 50
    async with PostgresStore(url) as store:
        rows = [("frames", os.urandom(32), 20.0, 40.0, 5.0) for _ in range(keys)]
        await store.spend_limits("node-a", rows)  # the rows exist: updates from here on
        for _ in range(runs):  # (CPU ticks are 10 ms: measured over many calls)
            s0, c0, w0 = server.sample(), time.process_time(), time.perf_counter()
            for i in range(calls):
                await store.spend_limits("node-a" if i % 2 else "node-b", rows)
            walls.append((time.perf_counter() - w0) * 1000 / calls)
            cpus.append((time.process_time() - c0) * 1000 / calls)
            server_cpus.append((server.sample() - s0) * 1000 / calls)
    return statistics.median(walls), statistics.median(cpus), statistics.median(server_cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("TENCHAT_TEST_POSTGRES")
                        or "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    local, shared = take_ns(args.runs)
    print(f"take, a key used lightly: in memory {local:.0f} ns, shared {shared:.0f} ns")
    with scratch_database(args.url) as url:
        for keys in (1, 100, 1000):
            wall, cpu, server = asyncio.run(report_ms(url, keys, args.runs))
            print(f"report of {keys:>4} keys: {wall:.2f} ms wall, relay CPU {cpu:.2f} ms,"
                  f" PostgreSQL CPU {server:.2f} ms")


if __name__ == "__main__":
    main()
