"""``python -m bench``: every benchmark scenario, one plain-text table (or ``--json``).

Scenarios (each also runnable alone):

- ``python -m bench.relay_throughput`` — durable messages/s through one relay
  process, and send → stored / send → delivered latency at fixed loads.
- ``python -m bench.group_fanout`` — a post to a 200,000-member group: send →
  stored and send → readable by an offline member, and deliveries/s to 1,000
  online members.
- ``python -m bench.social`` — feed load (50 posts with their authors' profiles), and a
  2 MB story image uploaded and viewed, end to end through real client cores.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import group_fanout, relay_throughput, social

SCENARIOS = {"relay_throughput": relay_throughput, "group_fanout": group_fanout,
             "social": social}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    relay_throughput.add_arguments(parser)
    group_fanout.add_arguments(parser, shared=False)  # --json, --quick, --sync: above
    social.add_arguments(parser, shared=False)
    args = parser.parse_args(argv)
    results = {}
    ok = True
    for name, scenario in SCENARIOS.items():
        try:
            out = scenario.run(args)
        except RuntimeError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            return 1
        results[name] = out
        ok = ok and out["ok"]
        if not args.json:
            print(scenario.format_table(out), end="\n\n", flush=True)
    if args.json:
        print(json.dumps({"ok": ok, "scenarios": results}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
