"""Idle connections: how many authenticated, idle connections one relay holds, and the
relay's memory per connection.

    python -m bench.idle_connections [--target N] [--steps K] [--idle-procs P] [--json] [--quick]

The relay runs as its own process (``BenchRelay``); the soft RLIMIT_NOFILE of this
process is raised towards what the target needs (up to the hard limit) before the
relay starts, so the relay inherits it. Load-generator processes ramp up to
``--target`` connections (default 10,000, the target; 500 with ``--quick``)
in ``--steps`` equal steps; each connection says hello, authenticates with its own
Ed25519 identity and publishes a signed prekey (``bench.soak.open_peer``), then stays
idle. After each
step the relay's RSS is read from /proc. Reported per step: connections open, the
relay's RSS, and KiB per connection (RSS above the idle relay's / connections). At
the end every connection is checked to be still open after ``--hold`` seconds idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from ._group_worker import raise_fd_limit
from ._relay import BenchRelay
from ._report import environment, scenario_main
from .soak import CONNECT_CONCURRENCY, Peer, open_peer, rss

__all__ = ["run", "main", "add_arguments", "format_table"]

RELAY_NAME = "bench-relay"
STEP_TIMEOUT = 300.0
FD_SLACK = 256  # descriptors beyond the connections (SQLite, logs, pipes)


def add_arguments(parser: argparse.ArgumentParser, *, shared: bool = True) -> None:
    parser.add_argument("--target", type=int, default=None,
                        help="idle connections to ramp to [10000; 500 with --quick]")
    parser.add_argument("--steps", type=int, default=None, help="ramp steps [5; 2 with --quick]")
    parser.add_argument("--idle-procs", type=int, default=2, dest="idle_procs",
                        help="load-generator processes [2]")
    parser.add_argument("--hold", type=float, default=None,
                        help="seconds idle before the final check [5; 1 with --quick]")
    if shared:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--quick", action="store_true", help="a short smoke run")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    target = args.target if args.target is not None else (500 if quick else 10_000)
    steps = args.steps if args.steps is not None else (2 if quick else 5)
    hold = args.hold if args.hold is not None else (1.0 if quick else 5.0)
    if not 1 <= target <= 1_000_000:
        raise SystemExit("error: --target must be 1..1000000")
    if not 1 <= steps <= 100:
        raise SystemExit("error: --steps must be 1..100")
    return {"target": target, "steps": steps, "procs": max(1, min(args.idle_procs, target)),
            "hold_s": hold}


# --- the load-generator process --------------------------------------------------------------


async def _serve(pipe: Connection, url: str) -> None:
    loop = asyncio.get_running_loop()
    stats: dict[str, int] = {}
    peers: list[Peer] = []
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    failures: list[str] = []

    async def one() -> Peer | None:
        async with sem:
            try:
                return await open_peer(url, RELAY_NAME, stats)
            except Exception as exc:
                if len(failures) < 10:
                    failures.append(f"{type(exc).__name__}: {exc}")
                return None

    while True:
        kind, n = await loop.run_in_executor(None, pipe.recv)
        if kind == "stop":
            break
        if kind == "open":
            t0 = time.monotonic()
            got = [p for p in await asyncio.gather(*(one() for _ in range(n))) if p]
            peers.extend(got)
            pipe.send(("opened", {"opened": len(got), "failed": n - len(got),
                                  "seconds": time.monotonic() - t0, "failures": failures[:]}))
        elif kind == "check":
            open_now = sum(1 for p in peers if not p.reader.done())
            errors = {k: v for k, v in stats.items() if v}
            pipe.send(("checked", {"open": open_now, "errors": errors}))
    for p in peers:
        with contextlib.suppress(Exception):
            await p.ws.close()


def _worker(pipe: Connection, url: str, fds: int) -> None:
    try:
        raise_fd_limit(fds)
        asyncio.run(_serve(pipe, url))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None


def _recv(pipe: Connection, want: str) -> dict[str, Any]:
    if not pipe.poll(STEP_TIMEOUT):
        raise RuntimeError(f"a load generator sent no {want!r} in {STEP_TIMEOUT:.0f}s")
    try:
        kind, body = pipe.recv()
    except EOFError:
        raise RuntimeError("a load generator exited unexpectedly") from None
    if kind == "error":
        raise RuntimeError(f"load generator failed: {body}")
    return body


# --- the scenario -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    s = _settings(args)
    fd_limit = raise_fd_limit(s["target"] + FD_SLACK)  # the relay inherits it
    ctx = mp.get_context("spawn")
    out: dict[str, Any] = {"scenario": "idle_connections", **environment(),
                           "settings": s, "relay_fd_limit": fd_limit}
    with BenchRelay(name=RELAY_NAME) as relay:
        time.sleep(0.5)
        base = rss(relay.pid)
        out["relay_rss_idle_mib"] = base / 2**20
        pipes: list[Connection] = []
        procs: list[Any] = []
        per_proc = s["target"] // s["procs"] + FD_SLACK
        try:
            for _ in range(s["procs"]):
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(theirs, relay.url, per_proc),
                                   daemon=True)
                proc.start()
                theirs.close()
                pipes.append(ours)
                procs.append(proc)
            steps: list[dict[str, Any]] = []
            opened = failed = 0
            failures: list[str] = []
            for k in range(1, s["steps"] + 1):
                goal = s["target"] * k // s["steps"]
                todo = goal - opened - failed
                shares = [todo // len(pipes)] * len(pipes)
                shares[0] += todo - sum(shares)
                t0 = time.monotonic()
                for pipe, n in zip(pipes, shares, strict=True):
                    pipe.send(("open", n))
                got = [_recv(p, "opened") for p in pipes]
                secs = time.monotonic() - t0
                opened += sum(g["opened"] for g in got)
                failed += sum(g["failed"] for g in got)
                failures = [f for g in got for f in g["failures"]][:10]
                time.sleep(0.5)
                now = rss(relay.pid)
                steps.append({
                    "connections": opened,
                    "relay_rss_mib": now / 2**20,
                    "kib_per_connection": (now - base) / 1024 / max(1, opened),
                    "connects_per_s": sum(g["opened"] for g in got) / max(secs, 1e-9),
                })
                if failed:
                    break  # the relay (or this machine) holds no more
            time.sleep(s["hold_s"])
            checks: list[dict[str, Any]] = []
            for p in pipes:  # one generator at a time, as each answers
                p.send(("check", 0))
                checks.append(_recv(p, "checked"))
            errors: dict[str, int] = {}
            for c in checks:
                for key, v in c["errors"].items():
                    errors[key] = errors.get(key, 0) + v
            held = sum(c["open"] for c in checks)
            alive = relay.proc is not None and relay.proc.poll() is None
        finally:
            for pipe in pipes:
                with contextlib.suppress(OSError):
                    pipe.send(("stop", 0))
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
    last = steps[-1]
    out.update({
        "steps": steps,
        "connections_opened": opened,
        "connect_failed": failed,
        "connect_failures": failures,
        "held_after_idle": held,
        "relay_rss_mib": last["relay_rss_mib"],
        "kib_per_connection": last["kib_per_connection"],
        "errors": errors,
        "relay_alive": alive,
    })
    out["ok"] = alive and not failed and not errors and held == s["target"]
    return out


def format_table(out: dict[str, Any]) -> str:
    s = out["settings"]
    lines = [
        "idle connections on one relay",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}",
        f"  python    {out['implementation']} {out['python']}",
        f"  load      ramp to {s['target']:,} authenticated idle connections in {s['steps']}"
        f" steps from {s['procs']} process(es); relay fd limit {out['relay_fd_limit']:,}",
        "",
        f"{'connections':>12}{'relay RSS MiB':>15}{'KiB/conn':>10}{'connects/s':>12}",
        f"{0:>12}{out['relay_rss_idle_mib']:>15.1f}{'-':>10}{'-':>12}",
    ]
    for st in out["steps"]:
        lines.append(f"{st['connections']:>12,}{st['relay_rss_mib']:>15.1f}"
                     f"{st['kib_per_connection']:>10.1f}{st['connects_per_s']:>12,.0f}")
    lines += [
        "",
        f"held {out['held_after_idle']:,} of {s['target']:,} after {s['hold_s']:g} s idle;"
        f" KiB/conn = (relay RSS - idle relay RSS) / connections",
    ]
    if not out["ok"]:
        lines += ["", "PROBLEMS:", f"connect failed {out['connect_failed']}"
                  f" {out['connect_failures'][:3]}, errors {out['errors']},"
                  f" relay alive {out['relay_alive']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.idle_connections", __doc__, add_arguments, run,
                         format_table, argv)


if __name__ == "__main__":
    sys.exit(main())
