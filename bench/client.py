"""Client: ``tenchat send`` start to exit, TUI start to first frame, history page and FTS5
search over a large local cache.

    python -m bench.client [--runs R] [--cache-messages N] [--json] [--quick]

1. ``tenchat send``: a relay (its own process, ``BenchRelay``) and two identities
   made with ``tenchat init``; then ``--runs`` times the real command
   ``tenchat --home H send bob TEXT`` (the ``tenchat`` script of this environment),
   from process start to exit (interpreter, imports, keystore unlock with Argon2id,
   connect, auth, encrypt, stored answer). Median and max. Then the same with
   ``tenchat daemon`` serving the home: the command goes through its socket
   (``client/launch.py``: no passphrase, no Argon2id, no relay handshake).
2. TUI: the real ``tenchat --home H chat`` in a pseudo-terminal (100x30,
   TERM=xterm-256color) with the passphrase in ``TENCHAT_PASSPHRASE``: start → first
   byte written to the terminal, and start → the first frame of the chat screen (its
   status line ``F1 help`` painted: keystore unlocked, cache open, conversations
   listed). Then the process is terminated. Median of ``--runs``.
3. Local cache: a cache (``client/cache/`` ``Cache``, the file the client uses,
   encrypted with SQLCipher, WAL, FTS5 index kept by its triggers), and beside it the
   same messages in a plain (unencrypted) cache, each filled with ``--cache-messages`` messages
   (1,000,000; 100,000 with ``--quick``) over 100 conversations with
   ``cache.messages.insert_many`` — ~12 words each from a 5,000-word vocabulary drawn with a
   Zipf-like skew. Then: the latest page of 50 of a conversation (``cache.messages.history``),
   a page of 50 deep in its history (``before=``), and ``cache.search.messages`` (limit 50)
   for a common word, a rare word and a two-word prefix query; each repeated (50
   times, or fewer but at least 5 when one takes long), on the encrypted and the plain
   cache in turn, and reported as p50 / p99 of each, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import random
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from ._relay import BenchRelay, compile_bytecode
from ._report import environment, ms, percentiles, scenario_main

__all__ = ["run", "main", "add_arguments", "format_table"]

PASSPHRASE = "bench passphrase, not a secret"
TUI_TIMEOUT = 30.0
SEND_TIMEOUT = 60.0
PEERS = 100
VOCAB = 5000
PAGE = 50
BATCH = 10_000
FRAME_MARK = b"F1 help"  # the chat screen's status line: the first frame of the usable UI
QUERY_REPS = 50
QUERY_BUDGET_S = 3.0  # a slow query is repeated fewer times (at least 5)


def add_arguments(parser: argparse.ArgumentParser, *, shared: bool = True) -> None:
    # Alone, --runs; within `python -m bench`, --client-runs (bench.social has --runs).
    names = ("--runs", "--client-runs") if shared else ("--client-runs",)
    parser.add_argument(*names, dest="client_runs", type=int, default=None,
                        help="runs of `tenchat send` and of the TUI start [7; 3 with --quick]")
    parser.add_argument("--cache-messages", type=int, default=None, dest="cache_messages",
                        help="messages in the local cache [1000000; 100000 with --quick]")
    if shared:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--quick", action="store_true", help="a short smoke run")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    runs = args.client_runs if args.client_runs is not None else (3 if quick else 7)
    n = args.cache_messages if args.cache_messages is not None else (
        100_000 if quick else 1_000_000)
    if not 1 <= runs <= 100:
        raise SystemExit("error: --runs must be 1..100")
    if not 1000 <= n <= 20_000_000:
        raise SystemExit("error: --cache-messages must be 1000..20000000")
    return {"runs": runs, "cache_messages": n}


def _tenchat() -> list[str]:
    script = Path(sys.executable).parent / "tenchat"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tenchat.client"]


def _env(relay_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENCHAT_")}
    env.update(TENCHAT_PASSPHRASE=PASSPHRASE, TENCHAT_RELAY=relay_url)
    return env


def _cli(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*_tenchat(), "--home", str(home), *args], capture_output=True,
                          text=True, env=env, timeout=SEND_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"tenchat {' '.join(args)} exited {proc.returncode}:"
                           f" {proc.stderr[-800:]}")
    return proc


# --- 1 and 2: processes ------------------------------------------------------------------------


def _tui_once(home: Path, env: dict[str, str]) -> dict[str, float | None]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {**env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    t0 = time.monotonic()
    proc = subprocess.Popen([*_tenchat(), "--home", str(home), "chat"], stdin=slave,
                            stdout=slave, stderr=slave, env=env, start_new_session=True,
                            close_fds=True)
    os.close(slave)
    first: float | None = None
    frame: float | None = None
    buf = b""
    try:
        deadline = t0 + TUI_TIMEOUT
        while frame is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            now = time.monotonic()
            if first is None:
                first = now - t0
            buf = (buf + chunk)[-65536:]
            if FRAME_MARK in buf:
                frame = now - t0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    return {"first_output_s": first, "first_frame_s": frame}


def _sends_through_daemon(home: Path, env: dict[str, str], runs: int) -> list[float]:
    """``tenchat send`` while ``tenchat daemon`` serves the home: the command goes through
    its socket (client/launch.py). No passphrase in the sender's environment, so a send
    that did not go through the daemon would fail."""
    daemon = subprocess.Popen([*_tenchat(), "--home", str(home), "daemon"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock = home / "rpc.sock"
        deadline = time.monotonic() + SEND_TIMEOUT
        while not sock.exists():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tenchat daemon did not start")
            time.sleep(0.02)
        no_pass = {k: v for k, v in env.items() if k != "TENCHAT_PASSPHRASE"}
        _cli(home, no_pass, "send", "bob", "warm-up through the daemon")
        times = []
        for k in range(runs):
            t0 = time.monotonic()
            _cli(home, no_pass, "send", "bob", f"benchmark message {k} via the daemon")
            times.append(time.monotonic() - t0)
        return times
    finally:
        daemon.terminate()
        daemon.wait(30)


def _processes(s: dict[str, Any]) -> dict[str, Any]:
    compile_bytecode()
    with BenchRelay() as relay, tempfile.TemporaryDirectory(prefix="tenchat-bench-cli-") as d:
        env = _env(relay.url)
        alice, bob = Path(d) / "alice", Path(d) / "bob"
        _cli(alice, env, "init", "--handle", "alice")
        _cli(bob, env, "init", "--handle", "bob")
        _cli(alice, env, "send", "bob", "warm-up: the first send fetches bob's prekeys")
        send_s = []
        for k in range(s["runs"]):
            t0 = time.monotonic()
            _cli(alice, env, "send", "bob", f"benchmark message {k}")
            send_s.append(time.monotonic() - t0)
        daemon_s = _sends_through_daemon(alice, env, s["runs"])
        tui = [_tui_once(alice, env) for _ in range(s["runs"])]
    firsts = [t["first_output_s"] for t in tui if t["first_output_s"] is not None]
    frames = [t["first_frame_s"] for t in tui if t["first_frame_s"] is not None]
    return {
        "send_command": " ".join([*_tenchat(), "--home", "HOME", "send", "bob", "TEXT"]),
        "send_ms": {"median": 1000 * statistics.median(send_s), "max": 1000 * max(send_s),
                    "n": len(send_s)},
        "send_daemon_ms": {"median": 1000 * statistics.median(daemon_s),
                           "max": 1000 * max(daemon_s), "n": len(daemon_s)},
        "tui_first_output_ms": {"median": 1000 * statistics.median(firsts) if firsts
                                else float("nan"), "n": len(firsts)},
        "tui_first_frame_ms": {"median": 1000 * statistics.median(frames) if frames
                               else float("nan"),
                               "max": 1000 * max(frames) if frames else float("nan"),
                               "n": len(frames)},
    }


# --- 3: the local cache -------------------------------------------------------------------------


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < VOCAB:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    return sorted(words)


async def _build(cache: Any, rng: random.Random, vocab: list[str], peers: list[bytes],
                 n: int) -> float:
    """Fill ``cache`` with ``n`` messages; the seconds it took."""
    from tenchat.client.cache import MessageRow

    weights = [1 / (i + 1) for i in range(VOCAB)]  # Zipf-like: word i ~ 1/(i+1)
    t0 = time.monotonic()
    now_ms = int(time.time() * 1000)
    done = 0
    while done < n:
        size = min(BATCH, n - done)
        picks = rng.choices(vocab, weights, k=size * 12)
        rows = [
            MessageRow(
                id=rng.randbytes(16), peer=peers[(done + i) % PEERS],
                outgoing=bool(i & 1), text=" ".join(picks[12 * i:12 * i + 12]),
                sent_at=now_ms - (n - done - i) * 1000,
                received_at=now_ms - (n - done - i) * 1000, status=3)
            for i in range(size)
        ]
        async with cache.transaction():
            await cache.messages.insert_many(rows)
        done += size
    return time.monotonic() - t0


def _queries(cache: Any, peers: list[bytes], vocab: list[str], mid_keys: list[int]
             ) -> dict[str, Any]:
    """The measured queries: name -> a function of the repetition number."""
    reps = len(mid_keys)
    two = f"{vocab[1]} {vocab[2][:3]}"
    out: dict[str, Any] = {
        "history_latest": lambda k: cache.messages.history(peers[k % PEERS], PAGE),
        "history_deep": lambda k: cache.messages.history(peers[k % reps], PAGE,
                                                         before=mid_keys[k % reps]),
    }
    for label, text in (("common word", vocab[0]), ("rare word", vocab[-1]),
                        ("two words, prefix", two)):
        out["search " + label] = (
            lambda k, text=text: cache.search.messages(text, None, PAGE))
    return out


async def _cache(s: dict[str, Any]) -> dict[str, Any]:
    """The same messages in a plain cache and in an encrypted one (SQLCipher, the
    client's default), then each query timed on both, A/B interleaved: rounds alternate
    which goes first, so the machine's load moves both alike."""
    from tenchat.client.cache import Cache

    n = s["cache_messages"]
    results: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as dirs:
        caches, queries = {}, {}
        try:
            for mode in ("plain", "encrypted"):
                d = Path(dirs.enter_context(
                    tempfile.TemporaryDirectory(prefix="tenchat-bench-cache-")))
                rng = random.Random(8)  # the same contents in both
                vocab = _vocabulary(rng)
                peers = [rng.randbytes(32) for _ in range(PEERS)]
                cache = caches[mode] = await Cache.open(d, os.urandom(32),
                                                        encrypted=mode == "encrypted")
                build_s = await _build(cache, rng, vocab, peers, n)
                mid_keys = []
                for p in peers[:QUERY_REPS]:
                    page = await cache.messages.history(p, 1, before=n // 2)
                    mid_keys.append(page[0].key if page else n // 2)
                queries[mode] = _queries(cache, peers, vocab, mid_keys)
                results[mode] = {
                    "messages": n, "conversations": PEERS, "build_s": build_s,
                    "build_msgs_per_s": n / build_s,
                    "file_bytes": sum(p.stat().st_size for p in d.iterdir() if p.is_file()),
                    "query_words": {"common word": vocab[0], "rare word": vocab[-1],
                                    "two words, prefix": f"{vocab[1]} {vocab[2][:3]}"}}
            samples: dict[str, dict[str, list[int]]] = {m: {} for m in caches}
            found: dict[str, dict[str, int]] = {m: {} for m in caches}
            for name in queries["plain"]:
                budget = time.monotonic() + 2 * QUERY_BUDGET_S
                for k in range(QUERY_REPS):
                    for mode in (("plain", "encrypted") if k % 2 == 0
                                 else ("encrypted", "plain")):
                        t = time.monotonic_ns()
                        rows = await queries[mode][name](k)
                        samples[mode].setdefault(name, []).append(time.monotonic_ns() - t)
                        found[mode][name] = len(rows)
                    if k >= 4 and time.monotonic() > budget:
                        break
        finally:
            for cache in caches.values():
                await cache.close()
    for mode, r in results.items():
        r["history_latest"] = {"ms": percentiles(samples[mode]["history_latest"]),
                               "results": found[mode]["history_latest"]}
        r["history_deep"] = {"ms": percentiles(samples[mode]["history_deep"]),
                             "results": found[mode]["history_deep"]}
        r["search"] = {label: {"query": word,
                               "ms": percentiles(samples[mode]["search " + label]),
                               "results": found[mode]["search " + label]}
                       for label, word in r.pop("query_words").items()}
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    s = _settings(args)
    out: dict[str, Any] = {"scenario": "client", **environment(), "settings": s}
    out["processes"] = _processes(s)
    caches = asyncio.run(_cache(s))
    out["cache"], out["cache_plain"] = caches["encrypted"], caches["plain"]
    p, c = out["processes"], out["cache"]
    out["ok"] = bool(
        p["send_ms"]["n"] == s["runs"] and p["send_daemon_ms"]["n"] == s["runs"]
        and p["tui_first_frame_ms"]["n"] == s["runs"]
        and c["history_latest"]["results"] == PAGE and c["history_deep"]["results"] == PAGE
        and all(v["results"] > 0 for v in c["search"].values()))
    return out


def format_table(out: dict[str, Any]) -> str:
    s, p, c = out["settings"], out["processes"], out["cache"]
    plain = out.get("cache_plain", c)
    lines = [
        "client",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}",
        f"  python    {out['implementation']} {out['python']}",
        f"  cache     {c['messages']:,} messages in {c['conversations']} conversations,"
        f" encrypted {c['file_bytes'] / 2**20:,.0f} MiB built in {c['build_s']:.1f} s"
        f" ({c['build_msgs_per_s']:,.0f} msgs/s); plain {plain['file_bytes'] / 2**20:,.0f}"
        f" MiB in {plain['build_s']:.1f} s",
        "",
        f"{'measure':<44}{'p50/median ms':>14}{'p99/max ms':>12}",
        f"{'tenchat send, start to exit':<44}{ms(p['send_ms']['median']):>14}"
        f"{ms(p['send_ms']['max']):>12}",
        f"{'tenchat send through tenchat daemon':<44}"
        f"{ms(p['send_daemon_ms']['median']):>14}{ms(p['send_daemon_ms']['max']):>12}",
        f"{'TUI start to first output':<44}{ms(p['tui_first_output_ms']['median']):>14}"
        f"{'':>12}",
        f"{'TUI start to first frame':<44}{ms(p['tui_first_frame_ms']['median']):>14}"
        f"{ms(p['tui_first_frame_ms']['max']):>12}",
        "",
        f"{'cache query (1 of 50 runs: p50 / p99 ms)':<44}{'encrypted':>14}{'plain':>14}",
    ]

    def row(label: str, enc: dict[str, Any], pl: dict[str, Any]) -> str:
        return (f"{label:<44}{ms(enc['p50']) + ' / ' + ms(enc['p99']):>14}"
                f"{ms(pl['p50']) + ' / ' + ms(pl['p99']):>14}")

    lines.append(row("history: latest page of 50", c["history_latest"]["ms"],
                     plain["history_latest"]["ms"]))
    lines.append(row("history: a page of 50 mid-history", c["history_deep"]["ms"],
                     plain["history_deep"]["ms"]))
    for label, v in c["search"].items():
        lines.append(row(f"search {label} (50 newest)", v["ms"],
                         plain["search"][label]["ms"]))
    counts = ", ".join(str(v["ms"]["n"]) for v in c["search"].values())
    lines += ["", f"processes: median / max of {s['runs']} runs; cache queries: p50 / p99"
              f" of up to {QUERY_REPS} runs each, encrypted and plain interleaved"
              f" (searches: {counts})"]
    if not out["ok"]:
        lines += ["", "PROBLEMS: a run did not finish or a query found nothing"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.client", __doc__, add_arguments, run,
                         format_table, argv)


if __name__ == "__main__":
    sys.exit(main())
