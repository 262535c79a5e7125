"""Live latency between two real clients: typing indicator, read receipt, and reconnect
after the relay comes back (targets in docs/performance.md: typing p99 < 5 ms, read
receipt p99 < 20 ms, WebSocket reconnect < 1 s after the relay is back).

    python -m bench.latency [--samples N] [--trials N] [--json] [--quick]

A relay in its own process on a temporary data dir, and two real client cores
(``tenchat.client.service.Client``, each with its own home and SQLite cache) in this
process, both staying connected with ``Client.run()`` — what the TUI does — and talking to
the relay over loopback WebSockets. Before measuring they exchange a message each way, so
both Double Ratchet sessions exist.

1. Typing indicator. ``--samples`` times: A calls ``send_typing(B, active)`` (alternately
   on and off: encrypted under the session, committed, sent ``eph``), the relay pushes it
   to B's live connection, B decrypts it, commits and emits ``TypingChanged``. Time from
   A's call to B's event. The next one starts 10–20 ms after (measures latency, not a
   queue).
2. Read receipt. ``--samples`` times: A sends B a message; once B's client has emitted
   it (``MessageAdded``), B calls ``mark_read(A)`` (marked read in B's cache, a ``read``
   receipt encrypted and queued, committed, sent), the relay stores it and pushes it to A,
   A decrypts it and emits ``StatusChanged(..., READ)`` for that message. Time from B's
   call to A's event. Again 10–20 ms apart.
3. Reconnect. ``--trials`` times, with both clients online: the relay is killed
   (SIGKILL), stays down for a while (0.5 s to 12 s; with --quick up to 3 s), then starts
   again on the same port and data dir. Time from the restarted relay listening (its
   ``listening on`` line: the socket accepts from then on) to each client's
   ``ConnectionChanged`` online event (connected, authenticated, subscribed, watching):
   two samples a trial. p50 / max.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._events import EventPredicate
from ._relay import BenchRelay, fs_type
from ._report import environment, ms, percentiles, scenario_main

__all__ = ["run", "main", "add_arguments", "format_table"]

PASSPHRASE = "bench passphrase, not a secret"
TARGETS_MS = {"typing": 5.0, "read_receipt": 20.0, "reconnect": 1000.0}
SEED_TARGETS_MS = {"typing": 50.0, "read_receipt": 200.0, "reconnect": 5000.0}
DOWN_S = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0]  # a full run's outages
QUICK_DOWN_S = [0.5, 1.5, 3.0]
SAMPLE_TIMEOUT = 5.0  # s: an indicator or receipt not seen by then is counted lost
ONLINE_TIMEOUT = 15.0  # s: a client not online again by then fails the run
_now = time.monotonic_ns


class _Relay(BenchRelay):
    """A BenchRelay that tells when it was listening again (restarts keep the port)."""

    def start_timed(self) -> int:
        """Start again; the monotonic ns at which it was listening."""
        self.start()
        return _now()


def add_arguments(parser: argparse.ArgumentParser, *, shared: bool = True) -> None:
    """This scenario's options; ``shared=False`` leaves out --json and --quick."""
    g = parser.add_argument_group("latency")
    g.add_argument("--samples", type=int, default=None,
                   help="typing indicators and read receipts measured [400; 40 with --quick]")
    g.add_argument("--trials", type=int, default=None,
                   help=f"relay kills and restarts [{len(DOWN_S)}; {len(QUICK_DOWN_S)}"
                        " with --quick]")
    if shared:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--quick", action="store_true", help="a short smoke run")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    samples = args.samples if args.samples is not None else (40 if quick else 400)
    trials = args.trials if args.trials is not None else len(QUICK_DOWN_S if quick else DOWN_S)
    if not 1 <= samples <= 100_000 or not 1 <= trials <= 100:
        raise RuntimeError("--samples 1 to 100000, --trials 1 to 100")
    pattern = QUICK_DOWN_S if quick else DOWN_S
    down = [pattern[i % len(pattern)] for i in range(trials)]
    return {"samples": samples, "trials": trials, "down_s": down, "gap_ms": [10, 20]}


class _Waiter:
    """Resolves a future when a client emits an event that matches (set just before)."""

    def __init__(self, client: Any) -> None:
        self.pred: EventPredicate | None = None
        self.fut: asyncio.Future[int] | None = None
        client.subscribe(self._on)

    def _on(self, event: Any) -> None:
        at = _now()
        if self.fut is not None and not self.fut.done() and self.pred is not None \
                and self.pred(event):
            self.fut.set_result(at)

    def expect(self, pred: EventPredicate) -> asyncio.Future[int]:
        self.pred = pred
        self.fut = asyncio.get_running_loop().create_future()
        return self.fut


async def _gap() -> None:
    await asyncio.sleep(random.uniform(0.010, 0.020))


async def _scenario(relay: _Relay, home: Path, s: dict[str, Any]) -> dict[str, Any]:
    from tenchat.client.cache import READ
    from tenchat.client.events import (
        ONLINE,
        ConnectionChanged,
        MessageAdded,
        StatusChanged,
        TypingChanged,
    )
    from tenchat.client.service import Client

    alice = await Client.create(home / "alice", relay.url, "alice", PASSPHRASE)
    bob = await Client.create(home / "bob", relay.url, "bob", PASSPHRASE)
    online: dict[str, list[int]] = {"alice": [], "bob": []}
    for name, cl in (("alice", alice), ("bob", bob)):
        cl.subscribe(lambda e, name=name: online[name].append(_now()) if isinstance(
            e, ConnectionChanged) and e.state == ONLINE else None)
    a_wait, b_wait = _Waiter(alice), _Waiter(bob)
    runs = [asyncio.create_task(alice.run()), asyncio.create_task(bob.run())]
    try:
        async def both_online(after: int) -> None:
            deadline = time.monotonic() + ONLINE_TIMEOUT
            while not all(ts and ts[-1] > after for ts in online.values()):
                if time.monotonic() > deadline:
                    raise RuntimeError("a client did not come online again")
                await asyncio.sleep(0.002)

        await both_online(0)
        # A message each way: both sessions exist before anything is measured.
        got = b_wait.expect(lambda e: isinstance(e, MessageAdded) and not e.message.outgoing)
        await alice.send_text("bob", "hello bob")
        await asyncio.wait_for(got, SAMPLE_TIMEOUT)
        got = a_wait.expect(lambda e: isinstance(e, MessageAdded) and not e.message.outgoing)
        await bob.send_text("alice", "hello alice")
        await asyncio.wait_for(got, SAMPLE_TIMEOUT)
        await alice.mark_read(bob.user)
        await bob.mark_read(alice.user)
        await asyncio.sleep(0.2)

        # --- 1. typing indicator --------------------------------------------------------
        typing_ns: list[int] = []
        typing_lost = 0
        for i in range(s["samples"]):
            active = i % 2 == 0
            got = b_wait.expect(lambda e, active=active: isinstance(e, TypingChanged)
                                and e.peer == alice.user and e.active == active)
            t0 = _now()
            await alice.send_typing(bob.user, active)
            try:
                typing_ns.append(await asyncio.wait_for(got, SAMPLE_TIMEOUT) - t0)
            except TimeoutError:
                typing_lost += 1
            await _gap()

        # --- 2. read receipt -------------------------------------------------------------
        receipt_ns: list[int] = []
        receipt_lost = 0
        for i in range(s["samples"]):
            got = b_wait.expect(lambda e: isinstance(e, MessageAdded)
                                and not e.message.outgoing)
            sent = await alice.send_text_to(bob.user, f"read me {i}")
            try:
                await asyncio.wait_for(got, SAMPLE_TIMEOUT)
            except TimeoutError:
                receipt_lost += 1
                continue
            read = a_wait.expect(lambda e, mid=sent.id: isinstance(e, StatusChanged)
                                 and e.status == READ and mid in e.ids)
            t0 = _now()
            await bob.mark_read(alice.user)
            try:
                receipt_ns.append(await asyncio.wait_for(read, SAMPLE_TIMEOUT) - t0)
            except TimeoutError:
                receipt_lost += 1
            await _gap()

        # --- 3. reconnect after the relay comes back -------------------------------------
        reconnect_ns: list[int] = []
        trials = []
        for down in s["down_s"]:
            await asyncio.to_thread(relay.kill)
            await asyncio.sleep(down)
            back = await asyncio.to_thread(relay.start_timed)
            await both_online(back - 1)
            # A client may connect in the instant between the relay's line and our reading
            # it: that counts as 0.
            took = {n: max(0, ts[-1] - back) for n, ts in online.items()}
            reconnect_ns.extend(took.values())
            trials.append({"down_s": down, "alice_ms": took["alice"] / 1e6,
                           "bob_ms": took["bob"] / 1e6})
            await asyncio.sleep(0.2)
        return {
            "typing_ms": percentiles(typing_ns),
            "typing_lost": typing_lost,
            "read_receipt_ms": percentiles(receipt_ns),
            "read_receipt_lost": receipt_lost,
            "reconnect_ms": percentiles(reconnect_ns),
            "reconnect_trials": trials,
        }
    finally:
        for task in runs:
            task.cancel()
        for cl in (alice, bob):
            await cl.close()
        await asyncio.gather(*runs, return_exceptions=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    s = _settings(args)
    out: dict[str, Any] = {"scenario": "latency", **environment(), "settings": s}
    with _Relay(name="bench-latency") as relay, \
            tempfile.TemporaryDirectory(prefix="tenchat-bench-homes-") as homes:
        out["data_fs"] = fs_type(relay.data_dir)
        out.update(asyncio.run(_scenario(relay, Path(homes), s)))
    verdict = {}
    for key, target in TARGETS_MS.items():
        stat = "max" if key == "reconnect" else "p99"
        value = out[f"{key}_ms"][stat]
        verdict[key] = {"target_ms": target, "seed_target_ms": SEED_TARGETS_MS[key],
                        "of": stat, "value_ms": value, "holds": value < target}
    out["targets"] = verdict
    out["ok"] = (out["typing_lost"] == 0 and out["read_receipt_lost"] == 0
                 and out["typing_ms"]["n"] == out["read_receipt_ms"]["n"] == s["samples"]
                 and out["reconnect_ms"]["n"] == 2 * s["trials"])
    return out


def format_table(out: dict[str, Any]) -> str:
    s = out["settings"]
    v = out["targets"]

    def row(label: str, key: str) -> str:
        st = out[f"{key}_ms"]
        t = v[key]
        verdict = (f"   {t['of']} < {t['target_ms']:g} ms: "
                   f"{'holds' if t['holds'] else 'MISSES'}")
        return (f"{label:<44}{st['n']:>6}{ms(st['p50']):>9}{ms(st['p99']):>9}"
                f"{ms(st['max']):>9}{verdict}")

    downs = ", ".join(f"{d:g}" for d in s["down_s"])
    lost = out["typing_lost"] + out["read_receipt_lost"]
    return "\n".join([
        "tenchat live latency benchmark (two client cores, end to end over loopback)",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}",
        f"  python    {out['implementation']} {out['python']}",
        f"  relay     own process, SQLite on {out['data_fs']}; 2 clients in-process,"
        " both running Client.run()",
        f"  samples   {s['samples']} typing indicators, {s['samples']} read receipts,"
        f" {s['gap_ms'][0]}-{s['gap_ms'][1]} ms apart; {lost} lost",
        f"  reconnect {s['trials']} relay SIGKILLs, down {downs} s; restarted on the same"
        " port and data; 2 clients each",
        "",
        f"{'measure (ms)':<44}{'n':>6}{'p50':>9}{'p99':>9}{'max':>9}   target",
        row("typing: A send_typing → B TypingChanged", "typing"),
        row("read receipt: B mark_read → A READ status", "read_receipt"),
        row("reconnect: relay listening → client online", "reconnect"),
    ])


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.latency", __doc__, add_arguments, run,
                         format_table, argv)


if __name__ == "__main__":
    sys.exit(main())
