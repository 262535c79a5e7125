"""A scratch PostgreSQL database for a benchmark run, and the CPU its server uses.

``scratch_database(url)`` creates a fresh database on the server of ``url`` (named
``tenchat_bench_<random>``), yields its URL and drops it afterwards, so a run starts
from an empty store and leaves nothing behind. ``ServerCpu`` sums the CPU time of the
server's processes (every ``postgres`` process on this machine: the backends serving
the relay, and the WAL writer and checkpointer working for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from ._relay import _stat_cpu

__all__ = ["scratch_database", "ServerCpu", "is_postgres"]


def is_postgres(storage: str | None) -> bool:
    return bool(storage) and urlsplit(storage or "").scheme in ("postgresql", "postgres")


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    name = f"tenchat_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(url, f"CREATE DATABASE {name}"))
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl()
    finally:
        asyncio.run(_admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


class ServerCpu:
    """CPU seconds of every ``postgres`` process here (the server is local in a bench)."""

    def sample(self) -> float:
        total = 0.0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                if (proc / "comm").read_text().strip() == "postgres":
                    total += _stat_cpu(proc / "stat")
        return total

