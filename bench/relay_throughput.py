"""Relay throughput (durable messages/s) and latency at fixed offered loads.

    python -m bench.relay_throughput [--duration S] [--pairs N] [--procs P] [--json] [--quick]

Starts the relay as its own process on a temporary data directory, then load
generator processes (``bench._worker``) that each drive some of N pairs of
connections — a sender and a Subscribe'd recipient, each authenticated with
its own Ed25519 identity; the recipient publishes a signed prekey so that the
relay accepts messages to it. Two phases:

1. Throughput: every sender keeps ``--window`` Send frames outstanding
   (~200-byte opaque bodies) for ``--duration`` seconds after a warm-up; the
   recipients ack what they get every 5 ms. Durable messages/s = messages whose
   whole cycle completed inside the measured window (Stored answer at the
   sender AND delivered to the recipient AND the recipient's Ack answered) /
   window length.
2. Latency: paced sends at 50 % of the measured rate and at the target rate
   of 1,000 msg/s; send → Stored and send → delivered, p50 / p99 / max.

CPU of the relay (its event-loop thread and all its threads) and of each load
generator is read over the measured windows, to say what bounds the figure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ._postgres import ServerCpu, is_postgres, scratch_database
from ._relay import BenchRelay, ProcCpu, fs_type, machine_busy
from ._report import environment, ms, percentiles, scenario_main
from ._worker import BODY_SIZE, worker_main

__all__ = ["run", "main", "add_arguments", "format_table"]

TARGET_RATE = 1000  # msg/s: the latency targets (docs/performance.md) are stated at this load
START_DELAY = 0.3  # seconds between a phase's command and its start (workers line up)
READY_TIMEOUT = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="measured seconds per phase [10; 2 with --quick]",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="sender/recipient connection pairs [8; 4 with --quick]",
    )
    parser.add_argument(
        "--procs", type=int, default=None, help="load generator processes [2; 1 with --quick]"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=64,
        help="outstanding Send requests per sender in the throughput phase [64]",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="saturated windows measured, the median reported [3; 1 with --quick]",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")  # fmt: skip
    parser.add_argument(
        "--sync",
        choices=["full", "normal"],
        default=None,
        help="pass --sync to the relay [the relay's default: full]",
    )
    parser.add_argument(
        "--writer",
        choices=["process", "thread"],
        default=None,
        help="pass --writer to the relay (SQLite) [the relay's default: process]",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help="pass --storage to the relay: a postgresql:// URL runs it on a fresh database"
        " of that server (created and dropped), and measures the server's CPU too"
        " [the relay's default: sqlite]",
    )
    parser.add_argument(
        "--profile-relay",
        metavar="FILE",
        default=None,
        help="run the relay under cProfile and write its stats to FILE"
        " (slows the relay; for finding bottlenecks, not for figures)",
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    duration = args.duration if args.duration is not None else (2.0 if quick else 10.0)
    pairs = args.pairs if args.pairs is not None else (4 if quick else 8)
    procs = args.procs if args.procs is not None else (1 if quick else 2)
    if duration <= 0 or duration > 600:
        raise SystemExit("error: --duration must be in (0, 600] seconds")
    if not 1 <= pairs <= 1000:
        raise SystemExit("error: --pairs must be 1..1000")
    if args.rounds is not None and not 1 <= args.rounds <= 20:
        raise SystemExit("error: --rounds must be 1..20")
    if not 1 <= args.window <= 512:
        raise SystemExit("error: --window must be 1..512 (the relay's in-flight limit)")
    return {
        "duration": duration,
        "warmup": 0.5 if quick else 1.0,
        "pairs": pairs,
        "procs": max(1, min(procs, pairs)),
        "window": args.window,
        "rounds": args.rounds if args.rounds is not None else (1 if quick else 3),
        "sync": args.sync,
        "writer": args.writer,
        "storage": "postgresql" if is_postgres(args.storage) else "sqlite",
        "uvloop": importlib.util.find_spec("uvloop") is not None,
    }


class _Workers:
    """The load generator processes, each with a pipe for commands and results."""

    def __init__(self, url: str | list[str], pairs: int, procs: int, use_uvloop: bool) -> None:
        """``url``: the relay, or several nodes of one (bench/_worker.py places the pairs)."""
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for w in range(procs):
            ours, theirs = ctx.Pipe()
            indices = list(range(w, pairs, procs))
            proc = ctx.Process(
                target=worker_main, args=(theirs, url, indices, use_uvloop),
                name=f"bench-load-{w}", daemon=True,
            )  # fmt: skip
            proc.start()
            theirs.close()
            self.pipes.append(ours)
            self.procs.append(proc)
        self._collect(READY_TIMEOUT, "ready")

    def _collect(self, timeout: float, want: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        out: list[dict[str, Any]] = []
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"a load generator sent no {want!r} in {timeout:.0f}s")
            try:
                kind, body = pipe.recv()
            except EOFError:
                raise RuntimeError("a load generator exited unexpectedly") from None
            if kind == "error":
                raise RuntimeError(f"load generator failed: {body}")
            out.append(body)
        return out

    def command(self, kind: str, cmd: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send((kind, cmd))
        return self._collect(timeout, "result")

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop", {}))
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for pipe in self.pipes:
            pipe.close()


def _measure(
    workers: _Workers, relay_cpu: ProcCpu, kind: str, cmd: dict[str, Any], window_s: float,
    server: ServerCpu | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run one phase; sample the relay's CPU and the machine's (and the PostgreSQL
    server's, if given) over its measured window."""
    start_ns = time.monotonic_ns() + int(START_DELAY * 1e9)
    cmd = {**cmd, "start_at_ns": start_ns}
    for pipe in workers.pipes:
        pipe.send((kind, cmd))
    window_from = (start_ns + cmd["warmup_ns"]) / 1e9
    time.sleep(max(0.0, window_from - time.monotonic()))
    a, ma, sa = relay_cpu.sample(), machine_busy(), server.sample() if server else 0.0
    time.sleep(max(0.0, window_from + window_s - time.monotonic()))
    b, mb, sb = relay_cpu.sample(), machine_busy(), server.sample() if server else 0.0
    results = workers._collect(cmd["bound_s"] + 60, "result")
    main_pct, total_pct = ProcCpu.percent(a, b)
    busy = 100 * (mb[0] - ma[0]) / max(1, mb[1] - ma[1])  # % of all cores
    clients = [100 * r["cpu_s"] / window_s for r in results]
    cores = os.cpu_count() or 1
    cpu = {
        "relay_loop_pct": main_pct,
        "relay_total_pct": total_pct,
        "clients_pct": clients,
        "postgres_pct": 100 * (sb - sa) / window_s,
        "machine_busy_pct": busy,
        # Everything else, in % of one core: the kernel's loopback/disk work not charged to
        # our processes, and any other program running at the same time.
        "other_pct": max(0.0, busy * cores - total_pct - sum(clients) - 100 * (sb - sa) / window_s),
    }
    return results, cpu


def _errors(results: list[dict[str, Any]]) -> list[str]:
    return [e for r in results for e in r["errors"]][:10]


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not is_postgres(args.storage):
        return _run(args, args.storage, None)
    with scratch_database(args.storage) as url:
        return _run(args, url, ServerCpu())


def _run(args: argparse.Namespace, storage: str | None,
         server: ServerCpu | None) -> dict[str, Any]:
    s = _settings(args)
    duration, warmup = s["duration"], s["warmup"]
    relay_args = ["--sync", s["sync"]] if s["sync"] else []
    if s.get("writer"):
        relay_args += ["--writer", s["writer"]]
    if storage:
        relay_args += ["--storage", storage]
    profile = Path(args.profile_relay).resolve() if args.profile_relay else None
    with BenchRelay(args=relay_args, profile=profile) as relay:
        out: dict[str, Any] = {
            "scenario": "relay_throughput",
            **environment(),
            "settings": {**s, "body_bytes": BODY_SIZE, "relay_sync": s["sync"] or "full"},
            "relay_command": " ".join(relay.command),
            "data_fs": fs_type(relay.data_dir),
        }
        relay_cpu = ProcCpu(relay.pid)
        workers = _Workers(relay.url, s["pairs"], s["procs"], s["uvloop"])
        try:
            base = {
                "warmup_ns": int(warmup * 1e9),
                "duration_ns": int(duration * 1e9),
                "bound_s": START_DELAY + warmup + duration,
            }
            # 1. Saturated throughput: the median of `rounds` windows (a 2-core VM's speed
            # drifts; one window can be a lucky or an unlucky one).
            rounds = []
            for _ in range(s["rounds"]):
                results, cpu = _measure(
                    workers, relay_cpu, "throughput", {**base, "window": s["window"]}, duration,
                    server)
                completed = sum(r["window_completed"] for r in results)
                rounds.append({
                    "durable_msgs_per_s": completed / duration,
                    "completed_in_window": completed,
                    "window_s": duration,
                    "sent": sum(r["sent"] for r in results),
                    "completed": sum(r["completed"] for r in results),
                    "failed": sum(r["failed"] for r in results),
                    "drained": all(r["drained"] for r in results),
                    "errors": _errors(results),
                    **cpu,
                })  # fmt: skip
            ranked = sorted(rounds, key=lambda r: r["durable_msgs_per_s"])
            median = ranked[len(ranked) // 2]
            rate = median["durable_msgs_per_s"]
            relay_s = median["relay_total_pct"] / 100 * median["window_s"]
            out["throughput"] = {
                **median,
                # messages per CPU-second of the relay process: what one core would carry;
                # steadier than msgs/s on a shared machine (bench/baseline.py compares it)
                "durable_msgs_per_cpu_s": median["completed_in_window"] / relay_s
                if relay_s > 0 else 0.0,
                "rounds_msgs_per_s": [r["durable_msgs_per_s"] for r in rounds],
                "failed": sum(r["failed"] for r in rounds),
                "drained": all(r["drained"] for r in rounds),
                "errors": [e for r in rounds for e in r["errors"]][:10],
            }
            # 2. Latency at fixed offered loads.
            loads = [("50% of saturated", max(1.0, rate / 2)), ("target rate", TARGET_RATE)]
            out["latency"] = []
            for label, offered in loads:
                interval_ns = int(s["pairs"] * 1e9 / offered)  # per sender
                cmd = {**base, "interval_ns": interval_ns, "pairs_total": s["pairs"]}
                results, cpu = _measure(workers, relay_cpu, "latency", cmd, duration, server)
                stored = [x for r in results for x in r["stored_ns"]]
                delivered = [x for r in results for x in r["delivered_ns"]]
                out["latency"].append({
                    "load": label,
                    "offered_msgs_per_s": offered,
                    "achieved_msgs_per_s": len(stored) / duration,
                    "stored_ms": percentiles(stored),
                    "delivered_ms": percentiles(delivered),
                    "sent": sum(r["sent"] for r in results),
                    "completed": sum(r["completed"] for r in results),
                    "failed": sum(r["failed"] for r in results),
                    "skipped": sum(r["skipped"] for r in results),
                    "drained": all(r["drained"] for r in results),
                    "errors": _errors(results),
                    **cpu,
                })  # fmt: skip
        finally:
            workers.close()
        out["relay_db_bytes"] = relay.db_bytes()
    out["ok"] = _healthy(out)
    return out


def _healthy(out: dict[str, Any]) -> bool:
    phases = [out["throughput"], *out["latency"]]
    return all(p["drained"] and not p["failed"] and not p["errors"] for p in phases) and (
        out["throughput"]["durable_msgs_per_s"] > 0
    )


def _saturated_label(t: dict[str, Any]) -> str:
    n = len(t.get("rounds_msgs_per_s", [1]))
    return "saturated (durable)" if n == 1 else f"saturated (median of {n})"


def _pct(values: list[float]) -> str:
    return " + ".join(f"{v:.0f}%" for v in values)


def format_table(out: dict[str, Any]) -> str:
    s = out["settings"]
    t = out["throughput"]
    lines = [
        "tenchat relay benchmark",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}",
        f"  python    {out['implementation']} {out['python']}"
        f" ({'uvloop' if s['uvloop'] else 'asyncio'} in the load generators)",
        "  relay     own process, "
        + (f"sync={s['relay_sync']}, SQLite on {out['data_fs']},"
           f" writer: {s.get('writer') or 'process'}"
           if s.get("storage", "sqlite") == "sqlite" else "PostgreSQL (local server)"),
        f"  load      {s['pairs']} sender/recipient pairs in {s['procs']} process(es),"
        f" {s['body_bytes']}-byte bodies, window {s['window']} per sender,"
        f" {s['duration']:g} s measured after {s['warmup']:g} s warm-up",
        "",
        f"{'load':<28}{'msgs/s':>10}{'stored p50':>12}{'p99':>9}{'max':>9}"
        f"{'deliv p50':>11}{'p99':>9}{'max':>9}   {'relay cpu':>9}  {'clients cpu':<12}",
        f"{_saturated_label(t):<28}{t['durable_msgs_per_s']:>10,.0f}{'-':>12}{'-':>9}{'-':>9}"
        f"{'-':>11}{'-':>9}{'-':>9}   {t['relay_total_pct']:>8.0f}%  {_pct(t['clients_pct'])}",
    ]
    for row in out["latency"]:
        st, dv = row["stored_ms"], row["delivered_ms"]
        label = f"{row['offered_msgs_per_s']:,.0f}/s ({row['load']})"
        lines.append(
            f"{label:<28}{row['achieved_msgs_per_s']:>10,.0f}"
            f"{ms(st['p50']):>12}{ms(st['p99']):>9}{ms(st['max']):>9}"
            f"{ms(dv['p50']):>11}{ms(dv['p99']):>9}{ms(dv['max']):>9}"
            f"   {row['relay_total_pct']:>8.0f}%  {_pct(row['clients_pct'])}"
        )
    lines += [
        "",
        "latencies in ms; msgs/s of a latency row = Stored answers per second measured;",
        "cpu in % of one core over the measured window; relay cpu = all its threads"
        " and its SQLite writer process;",
        f"at saturation: relay event loop thread {t['relay_loop_pct']:.0f}%,"
        f" relay's other threads and writer process"
        f" {t['relay_total_pct'] - t['relay_loop_pct']:.0f}%,"
        f" load generators {sum(t['clients_pct']):.0f}%,"
        + (f" PostgreSQL server {t['postgres_pct']:.0f}%," if t.get("postgres_pct") else "")
        + f" everything else (kernel, other programs) {t['other_pct']:.0f}%;"
        f" machine {t['machine_busy_pct']:.0f}% busy ({out['cores']} cores)",
    ]
    if len(t.get("rounds_msgs_per_s", [])) > 1:
        each = ", ".join(f"{r:,.0f}" for r in t["rounds_msgs_per_s"])
        lines.append(f"saturated windows: {each} durable msgs/s (the median shown, with its cpu)")
    problems = [
        f"{name}: {p['failed']} failed, drained={p['drained']}, {p['errors'][:3]}"
        for name, p in [("throughput", t), *((r["load"], r) for r in out["latency"])]
        if p["failed"] or not p["drained"] or p["errors"]
    ]
    if problems:
        lines += ["", "PROBLEMS:", *problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.relay_throughput", __doc__, add_arguments, run,
                         format_table, argv)

if __name__ == "__main__":
    sys.exit(main())
