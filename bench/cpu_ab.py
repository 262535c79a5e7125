"""Relay CPU per message, two trees interleaved: what a change to the relay buys, on a
machine too loaded for wall-clock throughput to say.

    python -m bench.cpu_ab TREE_A TREE_B [--runs N] [-- relay_throughput options]

Each tree is a checkout with its own ``.venv`` (``git worktree add DIR COMMIT``, then
``python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'`` in it). ``--runs``
times, alternately A then B and B then A, it runs that tree's
``python -m bench.relay_throughput --json`` (default options: ``--quick --duration 3``)
and reads the relay process's CPU over the saturated window from the result: CPU-seconds
per 1,000 durable messages, of the whole process and of its event loop thread. Prints
every run, the medians, and the ratio B / A (below 1: B spends less per message).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "cpu_per_1000"]


def cpu_per_1000(throughput: dict[str, Any]) -> tuple[float, float]:
    """(process, event loop) CPU-seconds per 1,000 messages of a saturated window."""
    per = throughput["window_s"] / throughput["completed_in_window"] * 1000 / 100
    return throughput["relay_total_pct"] * per, throughput["relay_loop_pct"] * per


def _run(tree: Path, options: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [str(tree / ".venv" / "bin" / "python"), "-m", "bench.relay_throughput", "--json",
         *options], cwd=tree, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{tree}: {out.stderr.strip()[-400:]}")
    result: dict[str, Any] = json.loads(out.stdout)["throughput"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="tree A (the before)")
    parser.add_argument("b", type=Path, help="tree B (the after)")
    parser.add_argument("--runs", type=int, default=4, help="runs of each tree [4]")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    options = argv[split + 1:] or ["--quick", "--duration", "3"]  # relay_throughput's
    runs: dict[str, list[tuple[float, float, float]]] = {"A": [], "B": []}
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    for i in range(args.runs):
        for key in ("A", "B") if i % 2 == 0 else ("B", "A"):
            try:
                tp = _run(trees[key], options)
            except RuntimeError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            cpu, loop = cpu_per_1000(tp)
            runs[key].append((cpu, loop, tp["durable_msgs_per_s"]))
            print(f"{key}  cpu/1k {cpu:.4f} s  loop/1k {loop:.4f} s  "
                  f"{tp['durable_msgs_per_s']:,.0f} msgs/s  load {os.getloadavg()[0]:.1f}",
                  flush=True)
    med = {k: [statistics.median(r[j] for r in v) for j in range(3)] for k, v in runs.items()}
    for key, (cpu, loop, rate) in med.items():
        print(f"{key} median  cpu/1k {cpu:.4f} s  loop/1k {loop:.4f} s  {rate:,.0f} msgs/s")
    print(f"B / A: cpu per message {med['B'][0] / med['A'][0]:.3f}, event loop per message"
          f" {med['B'][1] / med['A'][1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
