"""asyncpg against psycopg 3 for the PostgreSQL store's group commit (docs/design.md).

    python -m bench.pg_drivers [--url postgresql://postgres@127.0.0.1/test] [--runs 5]

Both drivers, asyncio, one connection each, into a table shaped like the relay's
message queue (a bigserial seq, recipient, sender, msg id, time, 200-byte body):

- **batch**: 1,000 rows in one transaction (``executemany``), as a group commit writes;
- **single**: 200 rows, one transaction (and one commit, fsynced) each;

the median of ``--runs`` runs: rows/s and this process's CPU-milliseconds per 1,000
rows (the relay's CPU is what a node spends; PostgreSQL's own is the same SQL for both).
Uses ``TENCHAT_TEST_POSTGRES`` when ``--url`` is not given. Needs asyncpg and psycopg.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

TABLE = "bench_driver_queue"
CREATE = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} (
    seq bigserial PRIMARY KEY, recipient bytea NOT NULL, sender bytea NOT NULL,
    msg_id bytea NOT NULL, at bigint NOT NULL, body bytea NOT NULL
);
CREATE INDEX ON {TABLE} (recipient, seq);
"""
BATCH, SINGLE = 1000, 200


def _rows(n: int) -> list[tuple[bytes, bytes, bytes, int, bytes]]:
    return [(os.urandom(32), os.urandom(32), os.urandom(16), 1_700_000_000_000 + i,
             os.urandom(200)) for i in range(n)]


class Driver:
    name = ""

    async def connect(self, url: str) -> None: ...
    async def batch(self, rows: list[Any]) -> None: ...
    async def single(self, row: Any) -> None: ...
    async def close(self) -> None: ...


class Asyncpg(Driver):
    name = "asyncpg"
    sql = f"INSERT INTO {TABLE} (recipient, sender, msg_id, at, body) VALUES ($1,$2,$3,$4,$5)"

    async def connect(self, url: str) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(url)

    async def batch(self, rows: list[Any]) -> None:
        async with self.conn.transaction():
            await self.conn.executemany(self.sql, rows)

    async def single(self, row: Any) -> None:
        await self.conn.execute(self.sql, *row)  # autocommit: its own transaction

    async def close(self) -> None:
        await self.conn.close()


class Psycopg(Driver):
    name = "psycopg 3"
    sql = f"INSERT INTO {TABLE} (recipient, sender, msg_id, at, body) VALUES (%s,%s,%s,%s,%s)"

    async def connect(self, url: str) -> None:
        import psycopg

        self.conn = await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def batch(self, rows: list[Any]) -> None:
        async with self.conn.transaction(), self.conn.cursor() as cur:
            await cur.executemany(self.sql, rows)  # pipeline mode inside (psycopg >= 3.1)

    async def single(self, row: Any) -> None:
        await self.conn.execute(self.sql, row)

    async def close(self) -> None:
        await self.conn.close()


async def _timed(fn: Callable[[], Awaitable[None]], rows: int) -> tuple[float, float]:
    """(rows/s, CPU-ms per 1,000 rows) of ``fn``."""
    cpu, wall = time.process_time(), time.perf_counter()
    await fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return rows / wall, cpu * 1000 * 1000 / rows


async def run(url: str, runs: int) -> dict[str, dict[str, list[tuple[float, float]]]]:
    import asyncpg

    setup = await asyncpg.connect(url)
    await setup.execute(CREATE)
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    try:
        for _ in range(runs):
            for driver in (Asyncpg(), Psycopg()):
                await driver.connect(url)
                out = results.setdefault(driver.name, {"batch": [], "single": []})
                try:
                    rows = _rows(BATCH)
                    await driver.batch(_rows(10))  # warm: statements prepared
                    out["batch"].append(await _timed(functools.partial(driver.batch, rows),
                                                     BATCH))
                    singles = _rows(SINGLE)

                    async def each(d: Driver = driver, rs: list[Any] = singles) -> None:
                        for row in rs:
                            await d.single(row)

                    out["single"].append(await _timed(each, SINGLE))
                finally:
                    await driver.close()
                await setup.execute(f"TRUNCATE {TABLE}")
    finally:
        await setup.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await setup.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("TENCHAT_TEST_POSTGRES")
                        or "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.url, args.runs))
    print(f"PostgreSQL at {args.url}; median of {args.runs} runs; {os.cpu_count()} cores")
    print("| driver | batch of 1,000 in one transaction: rows/s | CPU-ms /1,000 rows "
          "| single-row commits: rows/s | CPU-ms /1,000 rows |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, out in results.items():
        b_rate = statistics.median(r for r, _ in out["batch"])
        b_cpu = statistics.median(c for _, c in out["batch"])
        s_rate = statistics.median(r for r, _ in out["single"])
        s_cpu = statistics.median(c for _, c in out["single"])
        print(f"| {name} | {b_rate:,.0f} | {b_cpu:.1f} | {s_rate:,.0f} | {s_cpu:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
