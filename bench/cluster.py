"""A relay cluster: 1, 2 and 3 relay nodes on PostgreSQL + NATS against one node on
SQLite, in one run (targets in docs/performance.md, "A relay cluster").

    python -m bench.cluster [--nodes 1,2,3] [--postgres URL] [--duration S] [--json] [--quick]

Every node is a real ``tenchat-relay serve --storage postgresql://… --bus nats://…``
process; the nodes of one configuration share a fresh scratch database (created and
dropped) and the benchmark's own ``nats-server`` (a private one on a free port, so its
CPU is the cluster's alone). The load generators (``bench._worker``, processes of their
own) put each pair's recipient on node ``i`` and its sender on node ``i + 1``: with two
or more nodes every message crosses from one node to the other over the bus.

Every configuration is started first and kept up; the measured windows then take turns
(SQLite, 1, 2, 3 nodes; again …), so a change in the shared machine's load falls on all of
them alike. For each configuration, the median of ``--rounds`` windows of:

1. saturated load: every sender keeps ``--window`` Sends outstanding; durable msgs/s as
   in ``bench.relay_throughput`` (stored, delivered and the delivery acked);
2. 1,000 msg/s paced: send → Stored and send → delivered, p50 / p99.

and CPU-seconds per 1,000 messages of each part: relay nodes, PostgreSQL (backends of
the scratch database; the server's shared workers), the bus, the load generators. A
model of throughput against nodes and cores is fitted to the PostgreSQL points
(``bench/_cluster_model.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import _cluster_model
from ._cluster_cpu import PartsCpu, pid_cpu
from ._postgres import scratch_database
from ._relay import BenchRelay
from ._report import environment, ms, percentiles, scenario_main
from .relay_throughput import START_DELAY, TARGET_RATE, _Workers
from .relay_throughput import add_arguments as _shared_arguments

__all__ = ["run", "main", "add_arguments", "format_table"]

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_P99_MS = 20.0  # cross-node send → delivered at 1,000 msg/s
TARGET_EFFICIENCY = 0.70  # a PostgreSQL node's msgs per relay-CPU-s / the SQLite node's
PARTS = ("relay", "pg_backends", "pg_server", "bus", "load")


def add_arguments(parser: argparse.ArgumentParser, *, shared: bool = True) -> None:
    """This scenario's options; ``shared=False`` leaves out those of relay_throughput
    (--duration, --pairs, --procs, --window, --rounds, --json, --quick), which it uses."""
    if shared:
        _shared_arguments(parser)
    g = parser.add_argument_group("cluster")
    g.add_argument("--nodes", default="1,2,3", metavar="LIST",
                   help="PostgreSQL node counts to run [1,2,3] (SQLite: always one node)")
    g.add_argument("--postgres", default=None, metavar="URL",
                   help="the PostgreSQL server (a scratch database is made on it)"
                        f" [TENCHAT_TEST_POSTGRES or {DEFAULT_POSTGRES}]")
    g.add_argument("--nats-server", default=None, metavar="PATH",
                   help="the nats-server binary [from PATH]")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(args.quick)
    try:
        nodes = sorted({int(n) for n in args.nodes.split(",") if n.strip()})
    except ValueError:
        raise RuntimeError(f"--nodes: not a list of numbers: {args.nodes!r}") from None
    if not nodes or not all(1 <= n <= 8 for n in nodes):
        raise RuntimeError("--nodes: counts from 1 to 8")
    duration = args.duration if args.duration is not None else (1.5 if quick else 5.0)
    pairs = args.pairs if args.pairs is not None else (6 if quick else 12)
    if not 0 < duration <= 600 or not 1 <= pairs <= 1000:
        raise RuntimeError("--duration in (0, 600] s, --pairs 1..1000")
    procs = args.procs if args.procs is not None else (1 if quick else 2)
    return {
        "nodes": nodes,
        "duration": duration,
        "warmup": 0.5 if quick else 1.0,
        "pairs": pairs,
        "procs": max(1, min(procs, pairs)),
        "window": args.window,
        "rounds": args.rounds if args.rounds is not None else (1 if quick else 3),
        "rate": TARGET_RATE,
    }


@dataclass
class _Config:
    label: str
    storage: str  # "sqlite" or "postgresql"
    nodes: list[BenchRelay]
    cpu: PartsCpu
    workers: _Workers | None = None


@contextlib.contextmanager
def _nats(binary: str | None) -> Iterator[tuple[str, int]]:
    """A private nats-server on a free port: (its URL, its pid)."""
    import socket

    path = binary or shutil.which("nats-server")
    if path is None:
        raise RuntimeError("nats-server is not installed (the bus of the cluster)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([path, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start on port {port}")
            time.sleep(0.02)
        yield f"nats://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _check_postgres(url: str) -> None:
    """RuntimeError (one line) if the PostgreSQL server of ``url`` does not answer."""
    import asyncio

    async def connect() -> None:
        import asyncpg

        conn = await asyncpg.connect(url, timeout=5)
        await conn.close()

    try:
        asyncio.run(connect())
    except Exception as exc:  # asyncpg's own errors, OSError, a timeout
        raise RuntimeError(f"PostgreSQL not reachable at {url} (--postgres): "
                           f"{exc or type(exc).__name__}") from None


def _start_nodes(stack: contextlib.ExitStack, n: int, args: list[str],
                 profile: Path | None) -> list[BenchRelay]:
    name = f"bench-cluster-{secrets.token_hex(3)}"  # one relay: one name, one bus subject
    nodes = []
    for i in range(n):  # one after another: the first creates the schema
        relay = BenchRelay(name=name, args=args, profile=profile if i == 0 else None)
        nodes.append(stack.enter_context(relay))
    return nodes


def run(args: argparse.Namespace) -> dict[str, Any]:
    s = _settings(args)
    server = args.postgres or os.environ.get("TENCHAT_TEST_POSTGRES") or DEFAULT_POSTGRES
    profile = Path(args.profile_relay).resolve() if args.profile_relay else None
    _check_postgres(server)
    out: dict[str, Any] = {"scenario": "cluster", **environment(), "settings": s,
                           "load_average": os.getloadavg()}
    with contextlib.ExitStack() as stack:
        bus, bus_pid = stack.enter_context(_nats(args.nats_server))
        configs = [_Config("SQLite, 1 node", "sqlite",
                           nodes := _start_nodes(stack, 1, [], None),
                           PartsCpu([r.pid for r in nodes], None, None))]
        for n in s["nodes"]:
            url = stack.enter_context(scratch_database(server))
            database = urlsplit(url).path.lstrip("/")
            nodes = _start_nodes(stack, n, ["--storage", url, "--bus", bus],
                                 profile if n == s["nodes"][0] else None)
            configs.append(_Config(f"PostgreSQL + NATS, {n} node{'s' * (n > 1)}",
                                   "postgresql", nodes,
                                   PartsCpu([r.pid for r in nodes], database, bus_pid)))
        try:
            for cfg in configs:
                cfg.workers = _Workers([r.url for r in cfg.nodes], s["pairs"], s["procs"],
                                       importlib.util.find_spec("uvloop") is not None)
            rows = _measure_all(configs, s)
            out["bus_cpu_s"] = pid_cpu(bus_pid)  # the whole run's, heartbeats included
        finally:
            for cfg in configs:
                if cfg.workers is not None:
                    cfg.workers.close()
    out["load_average_after"] = os.getloadavg()
    out["configs"] = rows
    pg = [r for r in rows if r["storage"] == "postgresql"]
    model = _cluster_model.fit([{"nodes": r["nodes"], **r["throughput"]["cpu_per_1000"],
                                 "postgres": r["throughput"]["cpu_per_1000"]["pg_backends"]
                                 + r["throughput"]["cpu_per_1000"]["pg_server"]}
                                for r in pg])
    out["model"] = _cluster_model.as_dict(model)
    out["targets"] = _targets(rows)
    out["ok"] = all(_healthy(p) for r in rows for p in (r["throughput"], r["latency"]))
    return out


def _measure_all(configs: list[_Config], s: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"warmup_ns": int(s["warmup"] * 1e9), "duration_ns": int(s["duration"] * 1e9),
            "bound_s": START_DELAY + s["warmup"] + s["duration"]}
    saturated: dict[str, list[dict[str, Any]]] = {c.label: [] for c in configs}
    paced: dict[str, list[dict[str, Any]]] = {c.label: [] for c in configs}
    interval_ns = int(s["pairs"] * 1e9 / s["rate"])  # per sender
    for _ in range(s["rounds"]):  # the configurations take turns, window by window
        for cfg in configs:
            saturated[cfg.label].append(_window(cfg, "throughput", {**base, "window": s["window"]},
                                                s["duration"]))
        for cfg in configs:
            paced[cfg.label].append(_window(
                cfg, "latency", {**base, "interval_ns": interval_ns, "pairs_total": s["pairs"]},
                s["duration"]))
    return [{"label": c.label, "storage": c.storage, "nodes": len(c.nodes),
             "throughput": _median_throughput(saturated[c.label]),
             "latency": _median_latency(paced[c.label])} for c in configs]


def _window(cfg: _Config, kind: str, cmd: dict[str, Any], window_s: float) -> dict[str, Any]:
    """One measured window of one configuration: its figures and its parts' CPU."""
    assert cfg.workers is not None
    start_ns = time.monotonic_ns() + int(START_DELAY * 1e9)
    cmd = {**cmd, "start_at_ns": start_ns}
    for pipe in cfg.workers.pipes:
        pipe.send((kind, cmd))
    window_from = (start_ns + cmd["warmup_ns"]) / 1e9
    time.sleep(max(0.0, window_from - time.monotonic()))
    a = cfg.cpu.sample()
    time.sleep(max(0.0, window_from + window_s - time.monotonic()))
    b = cfg.cpu.sample()
    results = cfg.workers._collect(cmd["bound_s"] + 60, "result")
    cpu = PartsCpu.diff(a, b)
    cpu["load"] = sum(r["cpu_s"] for r in results)
    if kind == "throughput":
        done = sum(r["window_completed"] for r in results)
        figures: dict[str, Any] = {"msgs_per_s": done / window_s}
    else:
        done = sum(len(r["stored_ns"]) for r in results)
        figures = {"msgs_per_s": done / window_s,
                   "stored_ms": percentiles([x for r in results for x in r["stored_ns"]]),
                   "delivered_ms": percentiles([x for r in results for x in r["delivered_ns"]])}
    return {
        **figures,
        "cpu_pct": {k: 100 * cpu[k] / window_s for k in PARTS},
        "cpu_per_1000": {k: 1000 * cpu[k] / max(1, done) for k in PARTS},
        "machine_busy_pct": cpu["machine_busy_pct"],
        "failed": sum(r["failed"] for r in results),
        "drained": all(r["drained"] for r in results),
        "errors": [e for r in results for e in r["errors"]][:10],
    }


def _checks(windows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"failed": sum(w["failed"] for w in windows),
            "drained": all(w["drained"] for w in windows),
            "errors": [e for w in windows for e in w["errors"]][:10]}


def _median_throughput(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The median window (by msgs/s), with its CPU."""
    median = sorted(windows, key=lambda w: w["msgs_per_s"])[len(windows) // 2]
    return {**median, **_checks(windows),
            "rounds_msgs_per_s": [w["msgs_per_s"] for w in windows]}


def _median_latency(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the windows of each percentile (and of the CPU per message)."""
    def med(kind: str, stat: str) -> float:
        return statistics.median(w[kind][stat] for w in windows)

    return {
        "msgs_per_s": statistics.median(w["msgs_per_s"] for w in windows),
        "stored_ms": {"p50": med("stored_ms", "p50"), "p99": med("stored_ms", "p99")},
        "delivered_ms": {"p50": med("delivered_ms", "p50"),
                         "p99": med("delivered_ms", "p99"),
                         "n": sum(w["delivered_ms"]["n"] for w in windows)},
        "rounds_delivered_p99_ms": [w["delivered_ms"]["p99"] for w in windows],
        "cpu_per_1000": {k: statistics.median(w["cpu_per_1000"][k] for w in windows)
                         for k in PARTS},
        "machine_busy_pct": statistics.median(w["machine_busy_pct"] for w in windows),
        **_checks(windows),
    }


def _healthy(phase: dict[str, Any]) -> bool:
    return phase["drained"] and not phase["failed"] and not phase["errors"] \
        and phase["msgs_per_s"] > 0


def _relay_efficiency(row: dict[str, Any]) -> float:
    """Messages per relay-CPU-second at saturation."""
    return 1000 / max(1e-9, row["throughput"]["cpu_per_1000"]["relay"])


def _targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    sqlite = next(r for r in rows if r["storage"] == "sqlite")
    pg = [r for r in rows if r["storage"] == "postgresql"]
    out: dict[str, Any] = {}
    cross = [r for r in pg if r["nodes"] > 1]
    if cross:
        worst = max(r["latency"]["delivered_ms"]["p99"] for r in cross)
        out["cross_node_p99"] = {"target_ms": TARGET_P99_MS, "value_ms": worst,
                                 "holds": worst < TARGET_P99_MS}
    one = next((r for r in pg if r["nodes"] == 1), None)
    if one is not None:
        ratio = _relay_efficiency(one) / _relay_efficiency(sqlite)
        out["relay_efficiency"] = {"target": TARGET_EFFICIENCY, "value": ratio,
                                   "holds": ratio >= TARGET_EFFICIENCY}
    rates = [r["throughput"]["msgs_per_s"] for r in pg]
    out["scaling"] = {"msgs_per_s": rates,
                      "grows": all(b > a for a, b in zip(rates, rates[1:], strict=False))}
    return out


def format_table(out: dict[str, Any]) -> str:
    s = out["settings"]
    la, la2 = out["load_average"], out["load_average_after"]
    lines = [
        "tenchat relay cluster benchmark (nodes: real relay processes; one machine)",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}; load average"
        f" {la[0]:.2f} at the start, {la2[0]:.2f} at the end (the machine is shared)",
        f"  load      {s['pairs']} sender/recipient pairs in {s['procs']} process(es) per"
        f" configuration, recipient on node i, sender on node i+1; window {s['window']};"
        f" median of {s['rounds']} window(s) of {s['duration']:g} s, configurations in turn",
        "",
        f"{'configuration':<26}{'msgs/s':>9}{'deliv p50':>11}{'p99':>8}"
        f"{'stored p99':>12}   CPU-s per 1,000 msgs: {'relay':>6}{'PG':>7}{'PG srv':>7}"
        f"{'bus':>7}{'load':>7}   {'msgs/relay-CPU-s':>16}",
    ]
    for r in out["configs"]:
        t, lat = r["throughput"], r["latency"]
        c = t["cpu_per_1000"]
        lines.append(
            f"{r['label']:<26}{t['msgs_per_s']:>9,.0f}{ms(lat['delivered_ms']['p50']):>11}"
            f"{ms(lat['delivered_ms']['p99']):>8}{ms(lat['stored_ms']['p99']):>12}"
            f"{'':>25}{c['relay']:>6.3f}{c['pg_backends']:>7.3f}{c['pg_server']:>7.3f}"
            f"{c['bus']:>7.3f}{c['load']:>7.3f}   {_relay_efficiency(r):>16,.0f}")
    lines += [
        "",
        f"msgs/s: durable, saturated; latencies (ms) at {s['rate']:,} msg/s paced; CPU at"
        " saturation. PG = the scratch database's backends; PG srv = the server's shared",
        "workers (WAL writer, checkpointer…: other users' work too); bus = nats-server;"
        " load = the load generators.",
        "saturated windows (msgs/s): " + "; ".join(
            f"{r['label']}: " + ", ".join(f"{x:,.0f}" for x in r["throughput"]["rounds_msgs_per_s"])
            for r in out["configs"]),
        "machine busy at saturation: " + ", ".join(
            f"{r['nodes']}×{r['storage'][:6]} {r['throughput']['machine_busy_pct']:.0f}%"
            for r in out["configs"]),
        "",
    ]
    t = out["targets"]
    if "cross_node_p99" in t:
        x = t["cross_node_p99"]
        lines.append(f"target: cross-node send → delivered p99 < {x['target_ms']:g} ms at"
                     f" 1,000 msg/s: {ms(x['value_ms'])} ms (worst): "
                     + ("holds" if x["holds"] else "MISSES"))
    if "relay_efficiency" in t:
        x = t["relay_efficiency"]
        lines.append(f"target: a PostgreSQL node's msgs per relay-CPU-s ≥ {x['target']:.0%} of"
                     f" the SQLite node's: {x['value']:.0%}: "
                     + ("holds" if x["holds"] else "MISSES"))
    lines.append("throughput against nodes: " + " → ".join(
        f"{v:,.0f}" for v in t["scaling"]["msgs_per_s"])
        + (" (grows)" if t["scaling"]["grows"] else
           f" (does not grow: {out['cores']} cores, all busy; see the model)"))
    m = out["model"]
    lines += ["", *_cluster_model.format_model(_cluster_model.Model(
        **{k: m[k] for k in ("relay_first", "relay_per_node", "bus_first", "bus_per_node",
                             "postgres", "points")}))]
    problems = [f"{r['label']} {name}: {p['failed']} failed, drained={p['drained']},"
                f" {p['errors'][:3]}"
                for r in out["configs"] for name, p in (("saturated", r["throughput"]),
                                                         ("paced", r["latency"]))
                if not _healthy(p)]
    if problems:
        lines += ["", "PROBLEMS:", *problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.cluster", __doc__, add_arguments, run,
                         format_table, argv)


if __name__ == "__main__":
    sys.exit(main())
