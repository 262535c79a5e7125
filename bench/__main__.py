"""``python -m bench``: every benchmark scenario, one plain-text table each (or ``--json``).

Scenarios (each also runnable alone, with ``--quick`` and ``--json``):

- ``python -m bench.relay_throughput`` — durable messages/s through one relay
  process, and send → stored / send → delivered latency at fixed loads.
- ``python -m bench.nostr_compare`` — the same 1:1 workload against the PyPI relay
  nostr-relay (installed into ``.bench/nostr-venv`` on the first run), side by side,
  and the ratio tenchat / nostr-relay. Here it reuses relay_throughput's result.
- ``python -m bench.group_fanout`` — a post to a 200,000-member group: send →
  stored and send → readable by an offline member, and deliveries/s to 1,000
  online members.
- ``python -m bench.social`` — feed load (50 posts with their authors' profiles), and a
  2 MB story image uploaded and viewed, end to end through real client cores.
- ``python -m bench.idle_connections`` — authenticated idle connections one relay
  holds (ramp to 10,000) and the relay's memory per connection.
- ``python -m bench.reconnect_storm`` — 1,000 clients with 100 queued messages each
  reconnect at once: reconnects/s and drained messages/s.
- ``python -m bench.client`` — ``tenchat send`` start to exit, TUI start to first
  frame, history page and FTS5 search over a 1,000,000-message local cache.
- ``python -m bench.latency`` — between two real client cores: typing indicator and
  read receipt (p50 / p99), and reconnect after the relay is killed and comes back.
- ``python -m bench.notify`` — presence, new-message and story notifications between
  client cores, a profile read, the list of 1,000 conversations.
- ``python -m bench.wallet`` — wallet connect (SIWE link), NFT metadata fetch (cold and
  cached), a gift to its first receipt, a balance sync over 7 chains (anvil nodes).
- ``python -m bench.cluster`` — 1, 2 and 3 relay nodes on PostgreSQL + NATS against one
  on SQLite: durable msgs/s, cross-node send → delivered at 1,000 msg/s, CPU per message
  of each part, and a model of throughput against nodes and cores.

``--check-baseline`` runs the scenarios of ``bench/baseline.json`` and fails (exit 1) on a
figure that regressed twice in a row beyond the margins (bench/baseline.py; CI runs it
with ``--quick``); ``--update-baseline`` rewrites that file from two runs, on purpose only.

``--only a,b`` runs some of them (names as above, without ``bench.``). ``--markdown``
prints the figures as Markdown; ``--markdown docs/performance.md`` writes them into that
page's generated part instead (``--from-json FILE`` renders a saved ``--json`` run
without running anything).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import (
    _report,
    baseline,
    calibrate,
    client,
    cluster,
    group_fanout,
    idle_connections,
    latency,
    nostr_compare,
    notify,
    reconnect_storm,
    relay_throughput,
    social,
    wallet,
)

SCENARIOS = {
    "relay_throughput": relay_throughput,
    "nostr_compare": nostr_compare,
    "group_fanout": group_fanout,
    "social": social,
    "idle_connections": idle_connections,
    "reconnect_storm": reconnect_storm,
    "client": client,
    "latency": latency,
    "notify": notify,
    "wallet": wallet,
    "cluster": cluster,
}

TITLES = {
    "relay_throughput": "1:1 throughput and latency",
    "nostr_compare": "Side by side with nostr-relay",
    "group_fanout": "Groups",
    "social": "Feed and stories",
    "idle_connections": "Idle connections",
    "reconnect_storm": "Reconnect storm and offline drain",
    "client": "Client",
    "latency": "Live latency",
    "notify": "Notifications and views",
    "wallet": "Wallet",
    "cluster": "A relay cluster",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    relay_throughput.add_arguments(parser)  # --json, --quick, --sync: shared by all
    nostr_compare.add_arguments(parser, shared=False)
    group_fanout.add_arguments(parser, shared=False)
    social.add_arguments(parser, shared=False)
    idle_connections.add_arguments(parser, shared=False)
    reconnect_storm.add_arguments(parser, shared=False)
    client.add_arguments(parser, shared=False)
    latency.add_arguments(parser, shared=False)
    notify.add_arguments(parser, shared=False)
    wallet.add_arguments(parser, shared=False)
    cluster.add_arguments(parser, shared=False)
    parser.add_argument("--only", default=None, metavar="NAMES",
                        help="comma-separated scenarios to run [all]: " + ", ".join(SCENARIOS))
    parser.add_argument("--markdown", nargs="?", const="-", default=None, metavar="FILE",
                        help="print the figures as Markdown, or with FILE write them between"
                        " its figures markers (docs/performance.md)")
    parser.add_argument("--from-json", type=Path, default=None, metavar="FILE",
                        help="with --markdown: render a saved `python -m bench --json` run")
    parser.add_argument("--check-baseline", nargs="?", const=baseline.BASELINE, default=None,
                        type=Path, metavar="FILE",
                        help="run the baseline's scenarios and compare, by ratio; exit 1 on a"
                        " regression seen twice in a row [bench/baseline.json]")
    parser.add_argument("--update-baseline", nargs="?", const=baseline.BASELINE, default=None,
                        type=Path, metavar="FILE",
                        help="run (--only, or the scenarios CI checks) and write the figures"
                        " as the new baseline [bench/baseline.json]")
    args = parser.parse_args(argv)
    if args.check_baseline is not None:
        return check_baseline(args)
    if args.from_json is not None:
        if args.markdown is None:
            parser.error("--from-json goes with --markdown")
        try:
            saved = json.loads(args.from_json.read_text())["scenarios"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: cannot read {args.from_json}: {exc}", file=sys.stderr)
            return 1
        return write_markdown(args.markdown, {k: v for k, v in saved.items() if k in SCENARIOS})
    names = list(SCENARIOS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            print(f"error: unknown scenario {', '.join(unknown)}", file=sys.stderr)
            return 2
    elif args.update_baseline is not None:
        names = list(baseline.DEFAULT_SCENARIOS)
    quiet = args.json or args.markdown is not None or args.update_baseline is not None
    runs = baseline.UPDATE_RUNS if args.update_baseline is not None else 1
    speeds: list[dict[str, float]] = []  # the machine's, beside each run of a new baseline
    try:
        all_results = []
        for _ in range(runs):
            if args.update_baseline is not None:
                speeds.append(calibrate.measure())
            all_results.append(run_scenarios(args, names, quiet=quiet))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    results = all_results[-1]
    ok = all(out["ok"] for res in all_results for out in res.values())
    if args.update_baseline is not None:
        if not ok:
            print("error: a scenario's own checks failed: no baseline written", file=sys.stderr)
            return 1
        meta = next(iter(all_results[0].values()))
        baseline.write(all_results, {k: meta[k] for k in ("date", "commit", "cores", "python")}
                       | {"quick": bool(args.quick), "runs": runs,
                          "machine": calibrate.best(speeds)}, args.update_baseline)
        print(f"wrote {len(baseline.figures(results))} figures (each the slowest of {runs}"
              f" runs) to {args.update_baseline}", file=sys.stderr)
        return 0
    if args.markdown is not None:
        status = write_markdown(args.markdown, results)
        return status or (0 if ok else 1)
    if args.json:
        print(json.dumps({"ok": ok, "scenarios": results}, indent=2))
    return 0 if ok else 1


def run_scenarios(args: argparse.Namespace, names: list[str], *,
                  quiet: bool = True) -> dict[str, Any]:
    """Run ``names`` in order: {name: result}; RuntimeError naming the one that failed.
    Unless ``quiet``, each table is printed as its scenario ends."""
    results: dict[str, Any] = {}
    for name in names:
        scenario = SCENARIOS[name]
        try:
            if scenario is nostr_compare:
                out = nostr_compare.run(args, tenchat=results.get("relay_throughput"))
            else:
                out = scenario.run(args)
        except RuntimeError as exc:
            raise RuntimeError(f"{name}: {exc}") from None
        results[name] = out
        if not quiet:
            print(scenario.format_table(out), end="\n\n", flush=True)
    return results


def check_baseline(args: argparse.Namespace) -> int:
    """--check-baseline: the baseline's scenarios, compared (bench/baseline.py)."""
    try:
        base = baseline.load(args.check_baseline)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the baseline {args.check_baseline}: {exc}", file=sys.stderr)
        return 1
    unknown = [n for n in base["scenarios"] if n not in SCENARIOS]
    if unknown:
        print(f"error: the baseline names unknown scenarios: {', '.join(unknown)}",
              file=sys.stderr)
        return 1
    if bool(base.get("quick")) != bool(args.quick):
        print("error: the baseline was taken " + ("with" if base.get("quick") else "without")
              + " --quick; compare like with like", file=sys.stderr)
        return 1
    try:
        first, second, twice = baseline.check(base, lambda names: run_scenarios(args, names))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    crowded = not twice and any(f.regressed for f in first) and baseline.busy()
    report = baseline.format_report(first, second, twice, crowded)
    print(json.dumps({"regressed": twice, "figures": [f.path for f in first]}) if args.json
          else report)
    return 1 if twice else 0


def write_markdown(target: str, results: dict[str, Any]) -> int:
    """Print the figures as Markdown (target "-"), or put them into the page ``target``."""
    tables = {name: SCENARIOS[name].format_table for name in results}
    section = _report.markdown(results, TITLES, tables)
    if target == "-":
        print(section, end="")
        return 0
    path = Path(target)
    try:
        path.write_text(_report.splice(path.read_text(), section))
    except (OSError, ValueError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote the figures into {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
