"""The benchmark runs end to end (a short smoke run); its figures are not judged here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import NatsServer

ROOT = Path(__file__).resolve().parent.parent


def _bench(*args: str, timeout: float = 240) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", *args, "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return json.loads(proc.stdout)


def _positive_percentiles(stats: dict[str, Any]) -> None:
    assert stats["n"] > 0
    assert 0 < stats["p50"] <= stats["p99"] <= stats["max"]


@pytest.mark.slow
def test_bench_quick_json_runs_and_reports_positive_figures() -> None:
    # The first run installs nostr-relay into .bench/nostr-venv (about a minute).
    result = _bench("bench", "--only", "relay_throughput,nostr_compare", timeout=600)
    assert result["ok"] is True
    assert list(result["scenarios"]) == ["relay_throughput", "nostr_compare"]
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

    # nostr_compare: the same settings, tenchat's figures reused from relay_throughput.
    cmp = result["scenarios"]["nostr_compare"]
    assert cmp["cores"] > 0 and cmp["settings"]["pairs"] == out["settings"]["pairs"]
    assert cmp["tenchat"]["durable_msgs_per_s"] == tp["durable_msgs_per_s"]
    nostr = cmp["nostr_relay"]
    assert nostr["version"] == "1.14"
    nt = nostr["throughput"]
    assert nt["durable_msgs_per_s"] > 0 and nt["failed"] == 0 and nt["drained"]
    assert not nt["errors"]
    nl = nostr["latency"]
    assert nl["offered_msgs_per_s"] > 0 and nl["achieved_msgs_per_s"] > 0
    _positive_percentiles(nl["stored_ms"])
    _positive_percentiles(nl["delivered_ms"])
    assert cmp["ratio_throughput"] == tp["durable_msgs_per_s"] / nt["durable_msgs_per_s"]


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


@pytest.mark.slow
def test_idle_connections_quick_holds_the_target_and_reports_memory() -> None:
    out = _bench("bench.idle_connections")
    assert out["ok"] is True and out["scenario"] == "idle_connections"
    s = out["settings"]
    assert out["cores"] > 0 and s["target"] == 500
    assert out["connections_opened"] == out["held_after_idle"] == s["target"]
    assert out["connect_failed"] == 0 and not out["errors"] and out["relay_alive"]
    assert [st["connections"] for st in out["steps"]] == [
        s["target"] * k // s["steps"] for k in range(1, s["steps"] + 1)]
    assert out["relay_rss_idle_mib"] > 0
    assert out["relay_rss_mib"] > out["relay_rss_idle_mib"]
    assert out["kib_per_connection"] > 0
    assert all(st["connects_per_s"] > 0 for st in out["steps"])


@pytest.mark.slow
def test_reconnect_storm_quick_drains_every_queued_message() -> None:
    out = _bench("bench.reconnect_storm")
    assert out["ok"] is True and out["scenario"] == "reconnect_storm"
    s = out["settings"]
    total = s["clients"] * s["queued"]
    assert out["prepare"]["clients"] == s["clients"] and out["prepare"]["queued"] == total
    st = out["storm"]
    assert st["reconnected"] == s["clients"]
    assert st["received"] == st["acked"] == st["expected_messages"] == total
    assert st["reconnects_per_s"] > 0 and st["drained_msgs_per_s"] > 0
    assert 0 < st["all_reconnected_s"] <= st["all_drained_s"]
    _positive_percentiles(st["reconnect_ms"])
    _positive_percentiles(st["drain_ms"])
    assert st["reconnect_ms"]["n"] == st["drain_ms"]["n"] == s["clients"]
    assert not st["errors"]


@pytest.mark.slow
def test_client_quick_times_send_tui_history_and_search() -> None:
    out = _bench("bench.client", "--cache-messages", "20000", "--runs", "1")
    assert out["ok"] is True and out["scenario"] == "client"
    p = out["processes"]
    assert p["send_ms"]["n"] == 1 and p["send_ms"]["median"] > 0
    assert p["send_daemon_ms"]["n"] == 1 and p["send_daemon_ms"]["median"] > 0
    assert p["tui_first_frame_ms"]["n"] == 1
    assert 0 < p["tui_first_output_ms"]["median"] <= p["tui_first_frame_ms"]["median"]
    c = out["cache"]
    assert c["messages"] == 20000 and c["file_bytes"] > 0 and c["build_msgs_per_s"] > 0
    for page in ("history_latest", "history_deep"):
        assert c[page]["results"] == 50, page
        _positive_percentiles(c[page]["ms"])
    assert set(c["search"]) == {"common word", "rare word", "two words, prefix"}
    for label, v in c["search"].items():
        assert v["results"] > 0, label
        _positive_percentiles(v["ms"])
    assert c["search"]["common word"]["results"] == 50


@pytest.mark.slow
def test_latency_quick_measures_typing_receipts_and_reconnect() -> None:
    out = _bench("bench.latency", "--samples", "20", "--trials", "2")
    assert out["ok"] is True and out["scenario"] == "latency"
    assert out["cores"] > 0
    s = out["settings"]
    assert s["samples"] == 20 and s["trials"] == 2 and len(s["down_s"]) == 2
    assert out["typing_lost"] == out["read_receipt_lost"] == 0
    for key in ("typing", "read_receipt"):
        assert out[f"{key}_ms"]["n"] == 20, key
        _positive_percentiles(out[f"{key}_ms"])
    # Each trial: the relay killed and restarted; both clients came back online.
    assert out["reconnect_ms"]["n"] == 4
    assert [t["down_s"] for t in out["reconnect_trials"]] == s["down_s"]
    assert all(t["alice_ms"] >= 0 and t["bob_ms"] >= 0 for t in out["reconnect_trials"])
    assert 0 < out["reconnect_ms"]["max"] < 60_000
    for key, target in (("typing", 5), ("read_receipt", 20), ("reconnect", 1000)):
        assert out["targets"][key]["target_ms"] == target, key


def test_markdown_renders_a_run_and_splices_it_into_the_page() -> None:
    from bench import _report

    out = {"date": "2026-11-26 08:37:00 UTC", "commit": "186fd15", "cores": 2, "ok": True,
           "implementation": "CPython", "python": "3.11.7", "platform": "Linux"}
    section = _report.markdown({"latency": out}, {"latency": "Live latency"},
                               {"latency": lambda o: f"typing p99 {o['cores']} cores\n"})
    assert "2026-11-26 08:37:00 UTC, commit `186fd15`, **2 cores**" in section
    table = "```\ntyping p99 2 cores\n```"
    assert f"### Live latency\n\n`python -m bench.latency`\n\n{table}" in section
    begin, end = _report.FIGURES_BEGIN, _report.FIGURES_END
    page = f"# Performance\nintro\n{begin}\nold figures\n{end}\nend\n"
    new = _report.splice(page, section)
    assert "old figures" not in new and "typing p99 2 cores" in new
    assert new.startswith("# Performance\nintro\n") and new.endswith(f"{end}\nend\n")
    assert _report.splice(new, section) == new  # refreshing twice changes nothing more
    with pytest.raises(ValueError):
        _report.splice("# no markers\n", section)


def test_markdown_from_a_saved_run_writes_the_page(tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps({"ok": True, "scenarios": {}}))
    page = tmp_path / "performance.md"
    from bench import _report

    page.write_text(f"# P\n{_report.FIGURES_BEGIN}\nold\n{_report.FIGURES_END}\n")
    proc = subprocess.run([sys.executable, "-m", "bench", "--markdown", str(page),
                           "--from-json", str(saved)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "No scenario was run." in page.read_text() and "old" not in page.read_text()
    proc = subprocess.run([sys.executable, "-m", "bench", "--from-json", str(saved)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--from-json goes with --markdown" in proc.stderr


@pytest.mark.slow
def test_notify_quick_measures_every_notification_and_view() -> None:
    out = _bench("bench.notify", "--notify-samples", "5", "--conversations", "200")
    assert out["ok"] is True and out["scenario"] == "notify"
    s = out["settings"]
    for key in ("presence", "push_event", "send_event"):
        assert out[f"{key}_ms"]["n"] == s["samples"], key
        _positive_percentiles(out[f"{key}_ms"])
    # a message's push is read off the socket before its event, inside its end to end
    assert out["push_event_ms"]["p50"] < out["send_event_ms"]["p50"]
    assert out["story_ms"]["n"] == s["stories"] * s["followers"]
    assert out["conversations_listed"] == 200
    for key in ("profile", "conversations"):
        assert out[f"{key}_ms"]["n"] == s["reads"]
    assert set(out["targets"]) == {"presence", "push_event", "story", "profile",
                                   "conversations"}


@pytest.mark.slow
def test_wallet_quick_measures_link_nft_gift_and_balances() -> None:
    out = _bench("bench.wallet", "--wallet-samples", "3")
    assert out["ok"] is True and out["scenario"] == "wallet"
    assert out["settings"]["chains"] == 7
    assert out["gift_received_wei"] == 3 * 10**15  # every gift reached bob's wallet
    for key in ("connect", "nft_cold", "nft_cached", "gift", "balance_sync"):
        assert out[f"{key}_ms"]["n"] == 3, key
        _positive_percentiles(out[f"{key}_ms"])
        assert out["targets"][key]["seed_target_ms"] > out["targets"][key]["target_ms"]


@pytest.mark.slow
def test_cluster_quick_runs_every_configuration_and_fits_the_model(
        postgres_service: str, tmp_path: Path) -> None:
    # real relay processes: one on SQLite, 1 and 2 on PostgreSQL + the bench's own NATS
    NatsServer(tmp_path)  # (not started: skips, or fails in CI, without nats-server)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cluster", "--quick", "--json", "--nodes", "1,2",
         "--pairs", "4", "--duration", "1", "--postgres", postgres_service],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    out = json.loads(proc.stdout)
    assert out["ok"] is True and out["scenario"] == "cluster"
    assert [(c["storage"], c["nodes"]) for c in out["configs"]] == [
        ("sqlite", 1), ("postgresql", 1), ("postgresql", 2)]
    for c in out["configs"]:
        t, lat = c["throughput"], c["latency"]
        assert t["msgs_per_s"] > 0 and not t["failed"] and t["drained"], c["label"]
        assert lat["delivered_ms"]["n"] > 0 and lat["delivered_ms"]["p50"] > 0, c["label"]
        cpu = t["cpu_per_1000"]
        assert cpu["relay"] > 0 and cpu["load"] > 0, (c["label"], cpu)
        if c["storage"] == "postgresql":  # the scratch database's backends
            assert cpu["pg_backends"] > 0, (c["label"], cpu)
        else:
            assert cpu["pg_backends"] == cpu["bus"] == 0, cpu
    assert out["bus_cpu_s"] > 0  # (in a 1 s window it may be under a clock tick)
    assert out["targets"]["cross_node_p99"]["value_ms"] > 0
    assert out["targets"]["relay_efficiency"]["value"] > 0
    model = out["model"]
    assert model["points"] == 2 and model["relay_first"] > 0
    assert [row["nodes"] for row in model["table"]][:3] == [1, 2, 3]
