"""The benchmark runs end to end (a short smoke run); its figures are not judged here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_quick_json_runs_and_reports_positive_figures() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    result = json.loads(proc.stdout)
    assert result["ok"] is True
    out = result["scenarios"]["relay_throughput"]
    for key in ("date", "commit", "cores", "python"):
        assert out[key], key
    tp = out["throughput"]
    assert tp["durable_msgs_per_s"] > 0
    assert tp["completed"] > 0 and tp["failed"] == 0 and tp["drained"]
    assert len(out["latency"]) == 2
    for row in out["latency"]:
        assert row["offered_msgs_per_s"] > 0
        assert row["achieved_msgs_per_s"] > 0
        for kind in ("stored_ms", "delivered_ms"):
            stats = row[kind]
            assert stats["n"] > 0
            assert 0 < stats["p50"] <= stats["p99"] <= stats["max"]
