"""The benchmark regression guard's rules (bench/baseline.py), on made-up results: which
figures it reads, the margins, and that a regression must show twice in a row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import baseline, calibrate


def result(msgs_per_s: float, p50: float) -> dict[str, Any]:
    return {
        "relay_throughput": {
            "settings": {"offered_msgs_per_s": 5},  # an input: never a figure
            "throughput": {"durable_msgs_per_s": msgs_per_s, "rounds_msgs_per_s": [1.0]},
            "latency": [{"stored_ms": {"n": 10, "p50": p50, "p99": 9 * p50, "max": 99.0}}],
        },
        "notify": {"presence_ms": {"n": 0, "p50": float("nan"), "p99": 0.0, "max": 0.0}},
        "latency": {"reconnect_ms": {"n": 6, "p50": 500.0, "p99": 900.0, "max": 900.0}},
    }


def test_figures_are_throughputs_and_latency_medians() -> None:
    assert baseline.figures(result(1000.0, 2.0)) == {
        "relay_throughput/throughput/durable_msgs_per_s": ("throughput", 1000.0),
        "relay_throughput/latency/0/stored_ms/p50": ("latency", 2.0),
    }  # not: settings, a list of rounds, p99, an empty table, the reconnect's random backoff


def test_margins_are_half_the_throughput_and_twice_the_latency() -> None:
    base = {"scenarios": result(1000.0, 2.0)}
    fine = baseline.compare(base, result(501.0, 3.9))
    assert [f.regressed for f in fine] == [False, False]
    slow = baseline.compare(base, result(499.0, 4.1))
    assert [(f.kind, f.regressed) for f in slow] == [("throughput", True), ("latency", True)]
    assert slow[0].ratio == 0.499
    missing = baseline.compare(base, {"relay_throughput": {"throughput": {}}})
    assert [f.regressed for f in missing] == [True, True]  # a figure gone is a regression


def quiet() -> bool:
    return False  # the machine is not crowded (the check's judgement is the point here)


def test_a_regression_counts_only_twice_in_a_row() -> None:
    base = {"scenarios": {"relay_throughput": result(1000.0, 2.0)["relay_throughput"]}}
    asked: list[list[str]] = []

    def runs(*outcomes: dict[str, Any]) -> Any:
        queue = list(outcomes)

        def run(names: list[str]) -> dict[str, Any]:
            asked.append(names)
            return {n: queue.pop(0)[n] for n in names}
        return run

    # slow once, then fine: noise, passes
    first, second, twice = baseline.check(base, runs(result(400.0, 2.0), result(900.0, 2.0)), quiet)
    assert twice == [] and first[0].regressed and not second[0].regressed
    assert asked == [["relay_throughput"], ["relay_throughput"]]
    # slow twice: fails, naming the figure
    _, _, twice = baseline.check(base, runs(result(400.0, 2.0), result(450.0, 2.0)), quiet)
    assert twice == ["relay_throughput/throughput/durable_msgs_per_s"]
    # fine at once: no second run
    asked.clear()
    _, second, twice = baseline.check(base, runs(result(1100.0, 1.0)), quiet)
    assert twice == [] and second == [] and asked == [["relay_throughput"]]
    report = baseline.format_report(*baseline.check(
        base, runs(result(400.0, 2.0), result(450.0, 2.0)), quiet))
    assert "REGRESSED" in report and "regressed twice in a row" in report
    # slow twice, but other programs crowded the machine: reported, not judged
    first, _, twice = baseline.check(base, runs(result(400.0, 2.0), result(450.0, 2.0)),
                                     lambda: True)
    assert twice == [] and first[0].regressed
    assert "not judged" in baseline.format_report(first, [], twice, crowded=True)
    assert baseline.busy(load=5.1, cores=2) and not baseline.busy(load=4.9, cores=2)


def test_the_written_baseline_reads_back_the_same_figures(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    baseline.write([result(1000.0, 2.0)], {"commit": "abc", "quick": True}, path)
    data = baseline.load(path)
    assert data["commit"] == "abc" and data["quick"] is True
    assert baseline.figures(data["scenarios"]) == baseline.figures(result(1000.0, 2.0))
    assert json.loads(path.read_text())["scenarios"]["relay_throughput"]["throughput"] == {
        "durable_msgs_per_s": 1000.0}


def test_the_committed_baseline_covers_what_ci_checks() -> None:
    data = baseline.load()
    assert list(data["scenarios"]) == list(baseline.DEFAULT_SCENARIOS)
    assert data["quick"] is True
    kinds = {kind for kind, _ in baseline.figures(data["scenarios"]).values()}
    assert kinds == {"throughput", "latency"}


def test_a_new_baseline_keeps_each_figure_at_its_slowest() -> None:
    kept = baseline.slowest([result(1000.0, 2.0), result(800.0, 1.5), result(900.0, 3.0)])
    assert kept == {"relay_throughput/throughput/durable_msgs_per_s": ("throughput", 800.0),
                    "relay_throughput/latency/0/stored_ms/p50": ("latency", 3.0)}


def test_a_slower_machine_widens_the_margins_by_its_slowest_part() -> None:
    then = {"python_ops_per_s": 100.0, "sqlite_rows_per_s": 1000.0}
    assert calibrate.factor(then, {"python_ops_per_s": 80.0, "sqlite_rows_per_s": 400.0}) == 0.4
    assert calibrate.factor(then, {"python_ops_per_s": 300.0, "sqlite_rows_per_s": 2000.0}) == 1.0
    assert calibrate.factor(None, then) == 1.0 and calibrate.factor(then, None) == 1.0
    base = {"scenarios": result(1000.0, 2.0)}
    half = baseline.compare(base, result(260.0, 7.9), machine=0.5)
    assert [f.regressed for f in half] == [False, False]  # within 0.5 × 0.5 and 2 / 0.5
    slow = baseline.compare(base, result(240.0, 8.1), machine=0.5)
    assert [f.regressed for f in slow] == [True, True]


def test_the_check_measures_the_machine_before_each_run() -> None:
    then = {"python_ops_per_s": 100.0, "sqlite_rows_per_s": 1000.0}
    base = {"machine": then,
            "scenarios": {"relay_throughput": result(1000.0, 2.0)["relay_throughput"]}}
    measured: list[int] = []

    def speeds(scale: float) -> Any:
        def measure() -> dict[str, float]:
            measured.append(1)
            return {key: scale * value for key, value in then.items()}
        return measure

    def run(names: list[str]) -> dict[str, Any]:
        return {n: result(400.0, 2.0)[n] for n in names}

    # the same slow figure twice: a regression on the baseline's machine…
    _, _, twice = baseline.check(base, run, quiet, speeds(1.0))
    assert twice == ["relay_throughput/throughput/durable_msgs_per_s"] and len(measured) == 2
    # …and not on a machine measured at 0.6× its speed (floor 0.5 × 0.6 × 1000 = 300)
    first, _, twice = baseline.check(base, run, quiet, speeds(0.6))
    assert twice == [] and not first[0].regressed and first[0].machine == 0.6
    assert "0.60× the baseline machine's speed" in baseline.format_report(first, [], twice)


def test_the_machine_speeds_are_measured_for_real() -> None:
    speeds = calibrate.measure()
    assert set(speeds) == {"python_ops_per_s", "sqlite_rows_per_s"}
    assert all(value > 0 for value in speeds.values())
    assert calibrate.best([speeds, {k: 2 * v for k, v in speeds.items()}]) == {
        k: 2 * v for k, v in speeds.items()}
