"""Run metadata (date, commit, machine) and plain-text formatting of results."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["environment", "percentiles", "ms", "scenario_main", "markdown", "splice",
           "FIGURES_BEGIN", "FIGURES_END"]

REPO = Path(__file__).resolve().parent.parent


def environment() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
    }


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def percentiles(samples_ns: list[int]) -> dict[str, float | int]:
    """p50 / p99 / max in milliseconds (nearest-rank), and the sample count."""
    if not samples_ns:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    s = sorted(samples_ns)
    n = len(s)

    def rank(q: float) -> float:
        return s[min(n - 1, max(0, math.ceil(round(q * n, 6)) - 1))] / 1e6

    return {"n": n, "p50": rank(0.50), "p99": rank(0.99), "max": s[-1] / 1e6}


def ms(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def scenario_main(prog: str, doc: str | None,
                  add_arguments: Callable[[argparse.ArgumentParser], None],
                  run: Callable[[argparse.Namespace], dict[str, Any]],
                  format_table: Callable[[dict[str, Any]], str], argv: list[str] | None) -> int:
    """``python -m bench.<scenario>``: parse, run, print the table (or ``--json``); the exit
    status says whether the scenario's checks held."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        out = run(args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2) if args.json else format_table(out))
    return 0 if out["ok"] else 1


# docs/performance.md's generated part lies between these two lines.
FIGURES_BEGIN = "<!-- figures: begin (python -m bench --markdown docs/performance.md) -->"
FIGURES_END = "<!-- figures: end -->"


def markdown(results: dict[str, dict[str, Any]], titles: dict[str, str],
             tables: dict[str, Callable[[dict[str, Any]], str]]) -> str:
    """The figures of one run as Markdown: when, where and on what it ran, then each
    scenario's table as the scenario prints it."""
    if not results:
        return "No scenario was run.\n"
    meta = next(iter(results.values()))
    ok = all(out.get("ok") for out in results.values())
    lines = [
        f"One run of `python -m bench`: {meta.get('date', 'unknown date')}, commit"
        f" `{meta.get('commit', 'unknown')}`, **{meta.get('cores', '?')} cores**,"
        f" {meta.get('implementation', 'Python')} {meta.get('python', '')}"
        f" on {meta.get('platform', 'an unknown platform')}."
        + ("" if ok else " Some scenario's own checks failed in this run (see its table)."),
        "",
    ]
    for name, out in results.items():
        lines += [
            f"### {titles.get(name, name)}",
            "",
            f"`python -m bench.{name}`",
            "",
            "```",
            tables[name](out).rstrip("\n"),
            "```",
            "",
        ]
    return "\n".join(lines)


def splice(doc: str, section: str) -> str:
    """``doc`` with the text between FIGURES_BEGIN and FIGURES_END replaced by ``section``."""
    start, end = doc.find(FIGURES_BEGIN), doc.find(FIGURES_END)
    if start < 0 or end < start:
        raise ValueError(f"the document has no {FIGURES_BEGIN!r} … {FIGURES_END!r} part")
    head = doc[: start + len(FIGURES_BEGIN)]
    return head + "\n\n" + section.strip("\n") + "\n\n" + doc[end:]
