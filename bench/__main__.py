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
- ``python -m bench.cluster`` — 1, 2 and 3 relay nodes on PostgreSQL + NATS against one
  on SQLite: durable msgs/s, cross-node send → delivered at 1,000 msg/s, CPU per message
  of each part, and a model of throughput against nodes and cores.

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
    client,
    cluster,
    group_fanout,
    idle_connections,
    latency,
    nostr_compare,
    reconnect_storm,
    relay_throughput,
    social,
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
    cluster.add_arguments(parser, shared=False)
    parser.add_argument("--only", default=None, metavar="NAMES",
                        help="comma-separated scenarios to run [all]: " + ", ".join(SCENARIOS))
    parser.add_argument("--markdown", nargs="?", const="-", default=None, metavar="FILE",
                        help="print the figures as Markdown, or with FILE write them between"
                        " its figures markers (docs/performance.md)")
    parser.add_argument("--from-json", type=Path, default=None, metavar="FILE",
                        help="with --markdown: render a saved `python -m bench --json` run")
    args = parser.parse_args(argv)
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
    results: dict[str, Any] = {}
    ok = True
    for name in names:
        scenario = SCENARIOS[name]
        try:
            if scenario is nostr_compare:
                out = nostr_compare.run(args, tenchat=results.get("relay_throughput"))
            else:
                out = scenario.run(args)
        except RuntimeError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            return 1
        results[name] = out
        ok = ok and out["ok"]
        if not args.json and args.markdown is None:
            print(scenario.format_table(out), end="\n\n", flush=True)
    if args.markdown is not None:
        status = write_markdown(args.markdown, results)
        return status or (0 if ok else 1)
    if args.json:
        print(json.dumps({"ok": ok, "scenarios": results}, indent=2))
    return 0 if ok else 1


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
