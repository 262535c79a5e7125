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


@pytest.mark.slow
def test_group_fanout_quick_json_runs_and_reports_figures() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.group_fanout", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    out = json.loads(proc.stdout)
    assert out["ok"] is True and out["scenario"] == "group_fanout"
    for key in ("date", "commit", "cores", "python"):
        assert out[key], key
    s = out["settings"]
    # Every bulk-added member (random ids and real identities) and the owner.
    assert out["prepare"]["group_members"] == s["members"] + s["online"] + 1
    sr = out["stored_readable"]
    assert not sr["errors"]
    for kind in ("stored_ms", "readable_ms", "read_ms"):
        assert sr[kind]["n"] == s["posts"], kind
        assert 0 < sr[kind]["p50"] <= sr[kind]["p99"] <= sr[kind]["max"], kind
    on = out["online"]
    assert on["members"] == s["online"]
    assert on["paced"]["deliveries"] == on["paced"]["expected"] == s["posts"] * s["online"]
    assert on["paced"]["all_delivered_ms"]["n"] == s["posts"]
    burst = on["burst"]
    assert burst["deliveries"] == burst["expected"] == s["burst"] * s["online"]
    assert burst["deliveries_per_s"] > 0


@pytest.mark.slow
def test_social_quick_json_runs_and_reports_figures() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.social", "--quick", "--json", "--runs", "2",
         "--authors", "2", "--image-mb", "0.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    out = json.loads(proc.stdout)
    assert out["ok"] is True and out["scenario"] == "social"
    assert out["receipts_received"] == 1
    assert out["image_png_bytes"] > 400_000
    for key, n in (("feed", 2), ("story_upload", 4), ("story_view", 2),
                   ("story_view_incognito", 2)):
        stats = out[f"{key}_ms"]
        assert stats["n"] == n and 0 < stats["p50"] <= stats["max"]
    for key in ("feed", "story_upload", "story_view"):
        assert out["targets"][key]["target_ms"] > 0
