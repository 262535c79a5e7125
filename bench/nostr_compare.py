"""Side by side with a peer: the same 1:1 publish → deliver workload against tenchat's relay
and against the Python relay ``nostr-relay`` from PyPI, in the same run.

    python -m bench.nostr_compare [--duration S] [--pairs N] [--procs P] [--window W]
                                  [--nostr-venv DIR] [--json] [--quick]

nostr-relay (``NOSTR_RELAY_VERSION``) is installed into its own virtual environment
(``.bench/nostr-venv`` in the repository, created on the first run with ``python3 -m
venv`` and ``pip install``), configured by a generated config file (SQLite storage
through SQLAlchemy/aiosqlite in a temporary directory, one gunicorn/uvicorn worker,
bound to 127.0.0.1 on a free port) and started as its own process with
``nostr-relay -c CONFIG serve``, as its README says to run it.

Workload, the same for both: N sender/recipient pairs (each connection its own key),
the recipients subscribed; every sender keeps W publishes outstanding for the measured
window; ~200-byte payloads. A message is *durable* once the sender has the relay's
stored answer (tenchat: ``stored``; nostr: ``OK`` true) AND the recipient got it
pushed (tenchat: ``deliver`` and its ``ack`` answered; nostr: ``EVENT`` on the ``REQ``
subscription — nostr has no delivery ack). Then p50/p99 publish → delivered at 50 % of
each relay's own saturated rate. nostr events are kind 4 with a ``p`` tag, the
recipient's ``REQ`` filters on kind and ``#p``; each is signed with BIP-340 Schnorr
over secp256k1 by the load generator (``bench/_nostr_load.py``, run with the nostr
venv's python, one process per ``--procs``, speaking JSON lines to this process).
tenchat's side is ``bench.relay_throughput`` with the same N, W, duration and procs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from . import relay_throughput
from ._relay import ProcCpu, machine_busy
from ._report import REPO, environment, ms, percentiles, scenario_main

__all__ = ["run", "main", "add_arguments", "format_table", "ensure_venv"]

NOSTR_RELAY_VERSION = "1.14"
DEFAULT_VENV = REPO / ".bench" / "nostr-venv"
LOAD_SCRIPT = Path(__file__).resolve().parent / "_nostr_load.py"
START_TIMEOUT = 60.0
INSTALL_TIMEOUT = 900.0
START_DELAY = 0.3


def add_arguments(parser: argparse.ArgumentParser, *, shared: bool = True) -> None:
    """``shared``: also the options of relay_throughput (duration, pairs, procs, window...)."""
    if shared:
        relay_throughput.add_arguments(parser)
    parser.add_argument("--nostr-venv", default=str(DEFAULT_VENV), dest="nostr_venv",
                        help=f"virtual environment for nostr-relay [{DEFAULT_VENV}]")


# --- nostr-relay: install, configure, run ------------------------------------------------------


def ensure_venv(venv: Path) -> Path:
    """The venv's python, creating the venv and installing nostr-relay on first use."""
    py = venv / "bin" / "python"
    if (venv / "bin" / "nostr-relay").exists() and _installed(py):
        return py
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], "create the nostr venv")
    _run([str(py), "-m", "pip", "install", "-q", f"nostr-relay=={NOSTR_RELAY_VERSION}"],
         "pip install nostr-relay")
    if not _installed(py):
        raise RuntimeError(f"nostr-relay {NOSTR_RELAY_VERSION} not importable in {venv}")
    return py


def _installed(py: Path) -> bool:
    """nostr-relay of ``NOSTR_RELAY_VERSION`` and the load generator's imports work."""
    check = ("import importlib.metadata as m, nostr_relay, aionostr.key, coincurve,"
             " websockets.asyncio.client;"
             f" assert m.version('nostr-relay') == {NOSTR_RELAY_VERSION!r}")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run([str(py), "-c", check], capture_output=True,
                              timeout=60).returncode == 0
    return False


def _run(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"{what}: {exc}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {(proc.stderr or proc.stdout)[-1500:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _version(py: Path) -> str:
    code = "import importlib.metadata as m; print(m.version('nostr-relay'))"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run([str(py), "-c", code], capture_output=True, text=True,
                              timeout=60).stdout.strip()
    return "?"


class NostrRelay:
    """``with NostrRelay(venv) as r: r.url, r.pid`` — nostr-relay on a temp SQLite file."""

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self._tmp = tempfile.TemporaryDirectory(prefix="tenchat-bench-nostr-")
        self.dir = Path(self._tmp.name)
        self.port = _free_port()
        self.config = self.dir / "config.yaml"
        self.db = self.dir / "nostr.sqlite3"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "nostr-relay"), "-c", str(self.config), "serve"]

    def _write_config(self) -> None:
        # JSON is YAML; the keys are those of nostr-relay's own config.yaml.
        conf = {
            "DEBUG": False,
            "relay_name": "bench nostr-relay",
            "storage": {
                "sqlalchemy.url": f"sqlite+aiosqlite:///{self.db}",
                "num_concurrent_reqs": 10,
                "num_concurrent_adds": 2,
                "validators": ["nostr_relay.validators.is_not_too_large",
                               "nostr_relay.validators.is_signed",
                               "nostr_relay.validators.is_recent",
                               "nostr_relay.validators.is_not_hellthread"],
            },
            "verification": {"nip05_verification": "disabled"},
            "gunicorn": {"bind": f"127.0.0.1:{self.port}", "workers": 1,
                         "loglevel": "warning", "reload": False},
            "authentication": {"enabled": False},
            "message_timeout": 1800,
            "subscription_limit": 32,
            "max_limit": 6000,
            "hellthread_limit": 100,
            "logging": {"version": 1, "disable_existing_loggers": False,
                        "root": {"level": "WARNING", "handlers": ["console"]},
                        "handlers": {"console": {"class": "logging.StreamHandler"}}},
        }
        self.config.write_text(json.dumps(conf, indent=2))

    def start(self) -> NostrRelay:
        self._write_config()
        self._log = (self.dir / "relay.log").open("ab")
        self.proc = subprocess.Popen(self.command, cwd=self.dir, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nostr-relay exited with {self.proc.returncode}:"
                                   f" {self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"nostr-relay did not listen in {START_TIMEOUT:.0f}s:"
                           f" {self.log_tail()}")

    @property
    def pid(self) -> int:
        """The process serving connections: gunicorn's one worker (else the master)."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(children.read_text().split()[0])
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "relay.log").read_text(errors="replace")[-chars:]
        return ""

    def __enter__(self) -> NostrRelay:
        try:
            return self.start()
        except BaseException:
            self._tmp.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self._tmp.cleanup()


class NostrLoad:
    """The load-generator processes (nostr venv python, JSON lines over stdin/stdout)."""

    def __init__(self, py: Path, url: str, pairs: int, procs: int) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        for w in range(procs):
            proc = subprocess.Popen([str(py), str(LOAD_SCRIPT)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, bufsize=1)
            self.procs.append(proc)
            self._send(proc, {"cmd": "setup", "url": url,
                              "indices": list(range(w, pairs, procs))})
        self.collect()

    @staticmethod
    def _send(proc: subprocess.Popen[str], cmd: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(cmd) + "\n")
        proc.stdin.flush()

    def command(self, cmd: dict[str, Any]) -> None:
        for proc in self.procs:
            self._send(proc, cmd)

    def collect(self) -> list[dict[str, Any]]:
        out = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # every phase is bounded inside the generator
            if not line:
                raise RuntimeError(f"nostr load generator exited with {proc.wait()}")
            body = json.loads(line)
            if "error" in body:
                raise RuntimeError(f"nostr load generator failed: {body['error']}")
            out.append(body)
        return out

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError, ValueError):
                self._send(proc, {"cmd": "stop"})
                assert proc.stdin is not None
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _measure(load: NostrLoad, cpu: ProcCpu, cmd: dict[str, Any],
             window_s: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    start = time.monotonic_ns() + int(START_DELAY * 1e9)
    cmd = {**cmd, "start_at_ns": start}
    load.command(cmd)
    window_from = (start + cmd["warmup_ns"]) / 1e9
    time.sleep(max(0.0, window_from - time.monotonic()))
    a, ma = cpu.sample(), machine_busy()
    time.sleep(max(0.0, window_from + window_s - time.monotonic()))
    b, mb = cpu.sample(), machine_busy()
    results = load.collect()
    return results, {
        "relay_total_pct": ProcCpu.percent(a, b)[1],
        "clients_pct": [100 * r["cpu_s"] / window_s for r in results],
        "machine_busy_pct": 100 * (mb[0] - ma[0]) / max(1, mb[1] - ma[1]),
    }


def _sums(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "sent": sum(r["sent"] for r in results),
        "completed": sum(r["completed"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "skipped": sum(r["skipped"] for r in results),
        "drained": all(r["drained"] for r in results),
        "errors": [e for r in results for e in r["errors"]][:10],
    }


def run_nostr(py: Path, s: dict[str, Any]) -> dict[str, Any]:
    duration, warmup = s["duration"], s["warmup"]
    with NostrRelay(py.parent.parent) as relay:
        out: dict[str, Any] = {"relay_command": " ".join(relay.command),
                               "version": _version(py)}
        cpu = ProcCpu(relay.pid)
        load = NostrLoad(py, relay.url, s["pairs"], s["procs"])
        try:
            base = {"warmup_ns": int(warmup * 1e9), "duration_ns": int(duration * 1e9)}
            results, usage = _measure(load, cpu, {**base, "cmd": "throughput",
                                                  "window": s["window"]}, duration)
            completed = sum(r["window_completed"] for r in results)
            rate = completed / duration
            out["throughput"] = {"durable_msgs_per_s": rate, "completed_in_window": completed,
                                 **_sums(results), **usage}
            offered = max(1.0, rate / 2)
            cmd = {**base, "cmd": "latency", "interval_ns": int(s["pairs"] * 1e9 / offered),
                   "pairs_total": s["pairs"]}
            results, usage = _measure(load, cpu, cmd, duration)
            stored = [x for r in results for x in r["stored_ns"]]
            delivered = [x for r in results for x in r["delivered_ns"]]
            out["latency"] = {"load": "50% of saturated", "offered_msgs_per_s": offered,
                              "achieved_msgs_per_s": len(stored) / duration,
                              "stored_ms": percentiles(stored),
                              "delivered_ms": percentiles(delivered),
                              **_sums(results), **usage}
        finally:
            load.close()
        out["relay_db_bytes"] = sum(p.stat().st_size for p in relay.dir.glob("nostr.sqlite3*"))
    return out


def _tenchat_args(args: argparse.Namespace) -> argparse.Namespace:
    defaults = argparse.ArgumentParser()
    relay_throughput.add_arguments(defaults)
    ns = defaults.parse_args([])
    for key in vars(ns):
        if hasattr(args, key):
            setattr(ns, key, getattr(args, key))
    return ns


def run(args: argparse.Namespace, tenchat: dict[str, Any] | None = None) -> dict[str, Any]:
    """``tenchat``: a relay_throughput result of this run with the same settings, reused."""
    targs = _tenchat_args(args)
    s = relay_throughput._settings(targs)
    py = ensure_venv(Path(args.nostr_venv).resolve())
    if tenchat is None:
        tenchat = relay_throughput.run(targs)
    nostr = run_nostr(py, s)
    t_rate = tenchat["throughput"]["durable_msgs_per_s"]
    n_rate = nostr["throughput"]["durable_msgs_per_s"]
    t_lat = tenchat["latency"][0]
    n_lat = nostr["latency"]
    out: dict[str, Any] = {
        "scenario": "nostr_compare", **environment(),
        "settings": {"pairs": s["pairs"], "procs": s["procs"], "window": s["window"],
                     "duration": s["duration"], "warmup": s["warmup"],
                     "tenchat_sync": s["sync"] or "full"},
        "tenchat": {"durable_msgs_per_s": t_rate,
                    "latency_at_half": {k: t_lat[k] for k in (
                        "offered_msgs_per_s", "achieved_msgs_per_s", "stored_ms",
                        "delivered_ms")},
                    "relay_cpu_pct": tenchat["throughput"]["relay_total_pct"],
                    "ok": tenchat["ok"]},
        "nostr_relay": nostr,
        "ratio_throughput": t_rate / n_rate if n_rate else float("inf"),
        "ratio_delivered_p50": (n_lat["delivered_ms"]["p50"] / t_lat["delivered_ms"]["p50"]
                                if t_lat["delivered_ms"]["n"] and n_lat["delivered_ms"]["n"]
                                else float("nan")),
    }
    n_ok = all(p["drained"] and not p["failed"] and not p["errors"]
               for p in (nostr["throughput"], n_lat))
    out["ok"] = bool(tenchat["ok"] and n_ok and n_rate > 0)
    return out


def format_table(out: dict[str, Any]) -> str:
    s, t, n = out["settings"], out["tenchat"], out["nostr_relay"]
    nt, nl, tl = n["throughput"], n["latency"], t["latency_at_half"]

    def row(name: str, rate: float, lat: dict[str, Any], cpu: float) -> str:
        st, dv = lat["stored_ms"], lat["delivered_ms"]
        return (f"{name:<22}{rate:>10,.0f}{lat['offered_msgs_per_s']:>10,.0f}"
                f"{ms(st['p50']):>11}{ms(st['p99']):>9}{ms(dv['p50']):>11}{ms(dv['p99']):>9}"
                f"{cpu:>11.0f}%")

    lines = [
        "tenchat relay vs nostr-relay (same workload, same run)",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}",
        f"  python    {out['implementation']} {out['python']}",
        f"  peer      nostr-relay {n['version']} (SQLite, 1 worker): {n['relay_command']}",
        f"  load      {s['pairs']} sender/recipient pairs in {s['procs']} process(es),"
        f" window {s['window']} per sender, {s['duration']:g} s measured after"
        f" {s['warmup']:g} s warm-up; tenchat sync={s['tenchat_sync']}",
        "",
        f"{'relay':<22}{'durable/s':>10}{'at 50%/s':>10}{'stored p50':>11}{'p99':>9}"
        f"{'deliv p50':>11}{'p99':>9}{'relay cpu':>12}",
        row("tenchat", t["durable_msgs_per_s"], tl, t["relay_cpu_pct"]),
        row("nostr-relay", nt["durable_msgs_per_s"], nl, nt["relay_total_pct"]),
        "",
        f"ratio tenchat / nostr-relay: throughput {out['ratio_throughput']:.1f}x;"
        f" delivered p50 nostr-relay / tenchat {out['ratio_delivered_p50']:.2f}"
        " (each at 50% of its own saturated rate)",
        "latencies in ms (publish -> stored answer, publish -> pushed to the subscriber);"
        " relay cpu in % of one core at saturation",
    ]
    problems = [f"nostr {name}: failed {p['failed']}, drained {p['drained']}, {p['errors'][:3]}"
                for name, p in (("throughput", nt), ("latency", nl))
                if p["failed"] or not p["drained"] or p["errors"]]
    if not t["ok"]:
        problems.append("tenchat side reported problems (python -m bench.relay_throughput)")
    if problems:
        lines += ["", "PROBLEMS:", *problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.nostr_compare", __doc__, add_arguments, run,
                         format_table, argv)

if __name__ == "__main__":
    sys.exit(main())
