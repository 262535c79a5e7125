"""The regression guard: a quick run compared with the committed baseline, by ratio.

    python -m bench --quick --check-baseline      # CI (.ci/run): exit 1 on a regression
    python -m bench --quick --update-baseline     # rewrite bench/baseline.json, on purpose
                                                  # (two runs; each figure at its slowest)

The baseline (``bench/baseline.json``) holds the figures of ``--quick`` runs of the
scenarios it names. A *figure* is every throughput (a number whose key ends in
``_per_s``, or ``_per_cpu_s``: relay_throughput's messages per relay CPU-second, which
moves far less with the machine's load than msgs/s) and every latency's median (the
``p50`` of a ``*_ms`` percentile table) in a scenario's ``--json`` result, named by its
path (``relay_throughput/throughput/durable_msgs_per_s``, ``notify/presence_ms/p50``).
p50, not p99: a quick run has 5 to 50 samples per latency, so its p99 is its worst
sample, which a busy machine moves by 10×.

The baseline should sit on the slow side of the machine's drift, or a busy CI run looks
like a regression: ``--update-baseline`` takes two runs and keeps each figure at its
slowest; take it while the machine is about as busy as CI's usually is.

A figure regresses when a throughput falls below :data:`THROUGHPUT_FLOOR` × its baseline
or a latency rises above :data:`LATENCY_CEILING` × its baseline — margins for a shared
2-core machine whose speed drifts 1.5–3× within minutes. A regression must show twice in
a row: the scenarios with a regressed figure run once more, and only a figure that
regresses in both runs fails the check. So a slow change fails CI the day it lands, and
a noisy moment does not. A run made while other programs crowd the machine (a 1-minute
load average above :data:`BUSY_LOAD_PER_CORE` per core) is reported but not judged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import calibrate

__all__ = ["BASELINE", "THROUGHPUT_FLOOR", "LATENCY_CEILING", "Figure", "figures", "compare",
           "busy", "check", "slowest", "write", "format_report"]

BASELINE = Path(__file__).resolve().parent / "baseline.json"
THROUGHPUT_FLOOR = 0.5
LATENCY_CEILING = 2.0
# The scenarios CI runs (about a minute with --quick); --only changes what is written.
DEFAULT_SCENARIOS = ("relay_throughput", "latency", "notify", "wallet")
# Above this 1-minute load average per core, other programs hold the CPU: a slow figure
# then says nothing about the code, and the check does not count it (it says so).
BUSY_LOAD_PER_CORE = 2.5
UPDATE_RUNS = 2  # --update-baseline: runs taken, each figure kept at its slowest
_SKIP = {"settings", "targets"}  # inputs and verdicts, not figures
# Figures made of a random wait by design, not of the code's speed: the reconnect backoff's
# jitter. A quick run's median of it moves 2× alone.
_RANDOM = {"latency/reconnect_ms"}


@dataclass(frozen=True, slots=True)
class Figure:
    path: str
    kind: str  # "throughput" (higher is better) or "latency" (lower is better)
    baseline: float
    value: float
    # How much slower this machine is than the baseline's (bench/calibrate.py: ≤ 1): the
    # margins widen by it, so a slower machine is not taken for a slower change.
    machine: float = 1.0

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @property
    def regressed(self) -> bool:
        if self.value != self.value:  # NaN: the figure is missing in this run
            return True
        if self.kind == "throughput":
            return self.value < THROUGHPUT_FLOOR * self.machine * self.baseline
        return self.value > LATENCY_CEILING / self.machine * self.baseline


def figures(results: dict[str, Any]) -> dict[str, tuple[str, float]]:
    """path -> (kind, value) of every figure in ``{scenario: result}``."""
    out: dict[str, tuple[str, float]] = {}

    def walk(node: Any, path: str) -> Iterator[tuple[str, tuple[str, float]]]:
        if isinstance(node, dict):
            if path.endswith("_ms") and {"n", "p50"} <= node.keys():
                if node["n"] and path not in _RANDOM:
                    yield f"{path}/p50", ("latency", float(node["p50"]))
                return
            for key, value in node.items():
                if key not in _SKIP:
                    yield from walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}/{i}")
        elif path.endswith(("_per_s", "_per_cpu_s")) and isinstance(node, int | float) \
                and not isinstance(node, bool) and node > 0:
            yield path, ("throughput", float(node))

    for scenario, result in results.items():
        out.update(walk(result, scenario))
    return out


def compare(baseline: dict[str, Any], results: dict[str, Any],
            machine: float = 1.0) -> list[Figure]:
    """Every baseline figure of the scenarios in ``results``, against this run (NaN if the
    run lacks it), on a machine ``machine`` times as fast as the baseline's (≤ 1)."""
    now = figures(results)
    return [Figure(path, kind, value, now.get(path, (kind, float("nan")))[1], machine)
            for path, (kind, value) in figures(baseline["scenarios"]).items()
            if path.split("/", 1)[0] in results]


def busy(load: float | None = None, cores: int | None = None) -> bool:
    """Whether other programs crowd the machine: a 1-minute load average above
    :data:`BUSY_LOAD_PER_CORE` per core (a benchmark alone keeps it near its own 2-3)."""
    load = os.getloadavg()[0] if load is None else load
    return load > BUSY_LOAD_PER_CORE * (cores or os.cpu_count() or 1)


def check(baseline: dict[str, Any], run: Callable[[list[str]], dict[str, Any]],
          crowded: Callable[[], bool] = busy,
          speeds: Callable[[], dict[str, float]] = calibrate.measure,
          ) -> tuple[list[Figure], list[Figure], list[str]]:
    """Run the baseline's scenarios (``run(names) -> {scenario: result}``); run again those
    with a regressed figure. (first run's figures, the second run's figures of those
    scenarios, the paths that regressed in both). A run taken while ``crowded()`` (by
    other programs) confirms nothing: a regression must show in two uncrowded runs. Before
    each run the machine's reference speeds are measured (``speeds()``) and the margins
    widened by how much slower they are than the baseline's (:func:`calibrate.factor`)."""
    names = list(baseline["scenarios"])
    then = baseline.get("machine")

    def machine() -> float:
        return calibrate.factor(then, speeds()) if then else 1.0

    first = compare(baseline, run(names), machine())
    first_crowded = crowded()
    again = sorted({f.path.split("/", 1)[0] for f in first if f.regressed})
    second = compare(baseline, run(again), machine()) if again else []
    if first_crowded or crowded():
        return first, second, []
    twice = {f.path for f in first if f.regressed} & {f.path for f in second if f.regressed}
    return first, second, sorted(twice)


def load(path: Path = BASELINE) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), dict):
        raise ValueError("no scenarios in it")
    return data


def slowest(runs: list[dict[str, Any]]) -> dict[str, tuple[str, float]]:
    """The figures of several runs of the same scenarios, each at its slowest (the lowest
    throughput, the highest latency): a baseline on the slow side of the machine's drift,
    so that a busy CI run is not taken for a regression."""
    out: dict[str, tuple[str, float]] = {}
    for results in runs:
        for path, (kind, value) in figures(results).items():
            if path in out:
                old = out[path][1]
                value = min(old, value) if kind == "throughput" else max(old, value)
            out[path] = (kind, value)
    return out


def write(runs: list[dict[str, Any]], meta: dict[str, Any], path: Path = BASELINE) -> None:
    """The baseline file for these runs: the figures only (what compare reads), each at
    its slowest, with when and on what they were taken."""
    kept: dict[str, Any] = {}
    for name, (_, value) in slowest(runs).items():
        node = kept
        *parents, leaf = name.split("/")
        if leaf == "p50":
            *parents, leaf = parents
            value = {"n": 1, "p50": value}  # type: ignore[assignment]
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    doc = {"about": "python -m bench --quick --update-baseline; compared by"
                    " python -m bench --quick --check-baseline (bench/baseline.py)",
           **meta, "scenarios": kept}
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def format_report(first: list[Figure], second: list[Figure], twice: list[str],
                  crowded: bool = False) -> str:
    again = {f.path: f for f in second}
    lines = [f"{'figure (vs bench/baseline.json)':<58}{'baseline':>10}{'now':>10}{'ratio':>7}"
             f"{'again':>7}"]
    for f in first:
        rerun = again.get(f.path)
        mark = ("  REGRESSED" if f.path in twice else "" if not f.regressed
                else "  (crowded machine)" if crowded else "  (noise)")
        lines.append(f"{f.path[:57]:<58}{f.baseline:>10.4g}{f.value:>10.4g}{f.ratio:>7.2f}"
                     f"{(f'{rerun.ratio:.2f}' if rerun else ''):>7}{mark}")
    lines.append(f"margins: throughput ≥ {THROUGHPUT_FLOOR}× the baseline, latency (p50) ≤"
                 f" {LATENCY_CEILING}×; a regression counts when it shows in two runs in a row")
    if first and first[0].machine < 1.0:
        lines.append(f"this machine: {first[0].machine:.2f}× the baseline machine's speed"
                     " (bench/calibrate.py, its slowest part); the margins widened by as much")
    if crowded:
        lines.append(f"bench baseline: not judged: other programs crowd the machine (load"
                     f" average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    elif twice:
        lines.append(f"bench baseline: {len(twice)} figure(s) regressed twice in a row: "
                     + ", ".join(twice))
    else:
        lines.append(f"bench baseline: no regression ({len(first)} figures compared)")
    return "\n".join(lines)
