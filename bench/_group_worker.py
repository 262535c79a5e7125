"""Processes of the group benchmark (:mod:`bench.group_fanout`), each its own process.

- :func:`bulk_add_main` — the seed step: opens the relay's SQLite data through
  ``relay.storage.SQLiteStore`` while the relay is stopped and makes many users
  members of a group at once (``bulk_add_members``).
- :func:`members_main` — a load generator holding some of the online members:
  each an authenticated, subscribed WebSocket connection of its own Ed25519
  identity. For every ``gmsg`` of the group it counts deliveries per ``gseq``
  and keeps the monotonic time of the last one (CLOCK_MONOTONIC is one clock
  for every process of the machine, so the parent compares it with its send
  times). Commands over a pipe:

  - ``("mark", {})`` — start a CPU window; answers ``("marked", {})``;
  - ``("counts", {"gseqs": [...], "timeout": s})`` — wait (bounded) until every
    member of this process got every listed entry; answers ``("counts",
    {"got": {gseq: [count, last_ns]}, "complete": bool, "cpu_s": s})``;
  - ``("stop", {})``.
"""

from __future__ import annotations

import asyncio
import resource
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from tenchat.common.frames import GroupDeliver, Ok, Reply, Subscribe, Synced

from ._worker import SETUP_TIMEOUT, Link

__all__ = ["bulk_add_main", "members_main", "raise_fd_limit"]

LOGIN_CONCURRENCY = 50  # connections being set up at once, per process
_now = time.monotonic_ns


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``needed`` (≤ the hard limit);
    the soft limit afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    return soft


# --- seeding ------------------------------------------------------------------------------


def bulk_add_main(
    pipe: Connection, db_path: str, group: bytes, users: list[bytes], n_random: int
) -> None:
    """Add ``users`` and ``n_random`` random 32-byte ids to ``group``; answers
    ``("added", {"added": n, "seconds": s})`` or ``("error", text)``."""
    import os

    from tenchat.relay.storage import SQLiteStore

    async def run() -> dict[str, Any]:
        everyone = list(users) + [os.urandom(32) for _ in range(n_random)]
        t0 = time.perf_counter()
        async with SQLiteStore(Path(db_path)) as store:
            added = await store.bulk_add_members(group, everyone)
        return {"added": added, "seconds": time.perf_counter() - t0}

    try:
        pipe.send(("added", asyncio.run(run())))
    except BaseException as exc:
        pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        raise SystemExit(1) from None
    finally:
        pipe.close()


# --- online members -----------------------------------------------------------------------


class Members:
    """This process's online members and what they received."""

    def __init__(self, group: bytes) -> None:
        self.group = group
        self.links: list[Link] = []
        self.got: dict[int, list[int]] = {}  # gseq -> [deliveries, last delivery ns]
        self.errors: list[str] = []
        self.cpu_mark = time.process_time()

    def _on_push(self, link: Link, synced: asyncio.Event) -> Callable[[Reply], None]:
        resolve = link._resolve
        got = self.got
        group = self.group

        def on_frame(frame: Reply) -> None:
            if type(frame) is GroupDeliver:
                if frame.group == group:
                    rec = got.get(frame.gseq)
                    if rec is None:
                        got[frame.gseq] = [1, _now()]
                    else:
                        rec[0] += 1
                        rec[1] = _now()
            elif type(frame) is Synced:
                synced.set()
            else:
                resolve(frame)

        return on_frame

    async def join(self, url: str, seed: bytes, gate: asyncio.Semaphore) -> None:
        async with gate:
            link = await Link.login(url, SigningKey(seed))
            synced = asyncio.Event()
            link.handler = self._on_push(link, synced)
            ok = await link.call(Subscribe(id=next(link.ids)))
            if not isinstance(ok, Ok):
                raise RuntimeError(f"subscribe: expected ok, got {ok!r}")
            await asyncio.wait_for(synced.wait(), SETUP_TIMEOUT)
            self.links.append(link)

    async def counts(self, gseqs: list[int], timeout: float) -> dict[str, Any]:
        want = len(self.links)
        deadline = time.monotonic() + timeout
        while True:
            complete = all(self.got.get(q, (0,))[0] >= want for q in gseqs)
            if complete or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.005)
        return {
            "got": {q: self.got.get(q, [0, 0]) for q in gseqs},
            "complete": complete,
            "cpu_s": time.process_time() - self.cpu_mark,
            "dropped": sum(1 for link in self.links if link.reader.done()),
        }


async def _serve(pipe: Connection, url: str, seeds: list[bytes], group: bytes) -> None:
    loop = asyncio.get_running_loop()
    members = Members(group)
    gate = asyncio.Semaphore(LOGIN_CONCURRENCY)
    t0 = time.perf_counter()
    await asyncio.gather(*(members.join(url, seed, gate) for seed in seeds))
    pipe.send(("ready", {"members": len(members.links), "seconds": time.perf_counter() - t0}))
    try:
        while True:
            kind, cmd = await loop.run_in_executor(None, pipe.recv)
            if kind == "stop":
                break
            if kind == "mark":
                members.cpu_mark = time.process_time()
                pipe.send(("marked", {}))
            elif kind == "counts":
                pipe.send(("counts", await members.counts(cmd["gseqs"], cmd["timeout"])))
    finally:
        await asyncio.gather(*(link.close() for link in members.links), return_exceptions=True)


def members_main(
    pipe: Connection, url: str, seeds: list[bytes], group: bytes, use_uvloop: bool
) -> None:
    """Process entry point (must stay importable for the spawn start method)."""
    try:
        raise_fd_limit(len(seeds) + 256)
        coro = _serve(pipe, url, seeds, group)
        if use_uvloop:
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)
    except BaseException as exc:  # report to the parent, which owns the error message
        pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        raise SystemExit(1) from None
    finally:
        pipe.close()
