"""Sealed sender: 1:1 sends and receives with the sender sealed against the same with the
sender named, side by side (docs/protocol.md §5.10).

    python -m bench.sealed_sender [--messages N] [--rounds R] [--json] [--quick]

A relay (its own process, ``BenchRelay``) and two identities in this process (real
clients, real caches). They first exchange a message each way, so each holds the other's
access key. Then, ``--rounds`` times and alternating which goes first (A/B interleaved:
the machine's load moves both alike): bob queues ``--messages`` texts to alice with
``sealed_sender`` off, flushes the outbox (timed: encrypt is done at queue time, so this is
the seal — or not — and the send until every ``stored``), and alice receives them (timed:
fetch, unseal — or not —, decrypt, commit, ack); then the same with it on. Medians per
message, and the ratio. Also the sealing layer alone (``common.crypto.sealed`` seal and
unseal of a 300-byte envelope), p50 over 2,000 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._relay import BenchRelay, compile_bytecode
from ._report import environment, scenario_main

__all__ = ["run", "main", "add_arguments", "format_table"]

PASSPHRASE = "bench passphrase, not a secret"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=None, help="texts per batch [200]")
    parser.add_argument("--rounds", type=int, default=None, help="batches per mode [7]")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")


def _layer() -> dict[str, float]:
    from tenchat.common.crypto.keys import IdentityKey
    from tenchat.common.crypto.sealed import seal, unseal

    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    envelope, msg = os.urandom(300), os.urandom(16)
    seals, opens = [], []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        sealed = seal(alice, bob.public, msg, envelope)
        t1 = time.perf_counter_ns()
        unseal(bob, sealed)
        opens.append(time.perf_counter_ns() - t1)
        seals.append(t1 - t0)
    return {"seal_us": statistics.median(seals) / 1e3, "unseal_us": statistics.median(opens) / 1e3,
            "overhead_bytes": len(sealed) - len(envelope)}


async def _clients(url: str, tmp: Path) -> tuple[Any, Any]:
    from tenchat.client.service import Client

    alice = await Client.create(tmp / "alice", url, "alice", PASSPHRASE)
    bob = await Client.create(tmp / "bob", url, "bob", PASSPHRASE)
    await alice.send_text("@bob", "hi")
    await bob.sync()
    await bob.send_text("@alice", "hi")
    await alice.sync()
    await alice.send_text("@bob", "hi again")  # bob now holds alice's key, and she his
    await bob.sync()
    if not await bob.sealed_sender.access_for(alice.user):
        raise RuntimeError("bob never got alice's access key")
    return alice, bob


async def _batch(alice: Any, bob: Any, n: int, sealed: bool) -> tuple[float, float]:
    """(send ms, receive ms) per message for one batch of ``n`` texts from bob."""
    await bob.set_setting("sealed_sender", sealed)
    for i in range(n):
        await bob.queue_text(alice.user, f"bench message {i} " + "x" * 40)
    t0 = time.perf_counter_ns()
    sent = await bob.flush_outbox()
    t1 = time.perf_counter_ns()
    await alice.sync()
    t2 = time.perf_counter_ns()
    await bob.sync()  # alice's delivery receipts: out of the way of the next batch
    if sent < n:
        raise RuntimeError(f"only {sent} of {n} sent")
    return (t1 - t0) / 1e6 / n, (t2 - t1) / 1e6 / n


async def _sends(s: dict[str, Any]) -> dict[str, Any]:
    compile_bytecode()
    # The per-recipient sealed rate (abuse control, 1,200 a minute) would cap a benchmark
    # that sends one recipient thousands: off here, as the frame rates are for the others.
    bench_relay = BenchRelay()
    bench_relay.env = {"TENCHAT_RELAY_SEALED_RATE": "0"}
    with bench_relay as relay, tempfile.TemporaryDirectory(prefix="tenchat-bench-") as tmp:
        alice, bob = await _clients(relay.url, Path(tmp))
        try:
            await _batch(alice, bob, s["messages"], True)  # warm-up: connections, caches
            await _batch(alice, bob, s["messages"], False)
            got: dict[str, dict[str, list[float]]] = {
                m: {"send": [], "receive": []} for m in ("named", "sealed")}
            for r in range(s["rounds"]):
                for sealed in ((False, True) if r % 2 == 0 else (True, False)):
                    send, receive = await _batch(alice, bob, s["messages"], sealed)
                    mode = got["sealed" if sealed else "named"]
                    mode["send"].append(send)
                    mode["receive"].append(receive)
        finally:
            await alice.close()
            await bob.close()
    out = {m: {k: statistics.median(v) for k, v in d.items()} for m, d in got.items()}
    out["ratio"] = {k: out["sealed"][k] / out["named"][k] for k in ("send", "receive")}
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    s = {"messages": args.messages or (50 if args.quick else 200),
         "rounds": args.rounds or (2 if args.quick else 7)}
    out: dict[str, Any] = {"scenario": "sealed_sender", **environment(), "settings": s,
                           "load": os.getloadavg()}
    out["layer"] = _layer()
    out["sends"] = asyncio.run(_sends(s))
    out["ok"] = all(v > 0 for v in out["sends"]["sealed"].values())
    return out


def format_table(out: dict[str, Any]) -> str:
    s, layer, sends = out["settings"], out["layer"], out["sends"]
    lines = [
        "sealed_sender",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}, load {out['load'][0]:.2f}",
        "",
        f"{'per message, median of ' + str(s['rounds']) + ' batches':<40}"
        f"{'named ms':>10}{'sealed ms':>11}{'ratio':>8}",
    ]
    for key, label in (("send", "send (flush until stored)"),
                       ("receive", "receive (fetch, open, commit, ack)")):
        lines.append(f"{label:<40}{sends['named'][key]:>10.3f}{sends['sealed'][key]:>11.3f}"
                     f"{sends['ratio'][key]:>8.2f}")
    lines += ["", f"sealing layer alone: seal {layer['seal_us']:.0f} µs, unseal"
              f" {layer['unseal_us']:.0f} µs, +{layer['overhead_bytes']} bytes per envelope",
              f"batches of {s['messages']} texts, A/B interleaved"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.sealed_sender", __doc__, add_arguments, run,
                         format_table, argv)


if __name__ == "__main__":
    sys.exit(main())
