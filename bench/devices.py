"""Multi-device fan-out (issue 16): send → delivered on every device of the recipient, for
a recipient with 1, 3 and 5 devices, and what the relay spends per message per device.

    python -m bench.devices [--samples N] [--json] [--quick]

A relay in its own process; in this process a sender and three recipients' accounts —
with 1, 3 and 5 devices (linked the way `tenchat device link` does) — every device a
real client core running ``Client.run()`` (what the TUI does). Before measuring, the
sender writes to each account once, so every pairwise session exists. Then, ``--samples``
rounds, interleaved (the three accounts in turn, so the machine's load hits them alike):
the sender calls ``send_text`` to the account; the time until the **last** of its devices
has emitted ``MessageAdded``. 10–20 ms between sends. The relay's CPU (all its threads,
from /proc) is read around each account's sends: CPU-ms per message, and per delivered
copy (per device). Target (docs/performance.md): p99 with 5 devices < 2 × p99 with 1.
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

from ._relay import BenchRelay, ProcCpu, fs_type
from ._report import environment, ms, percentiles, scenario_main

__all__ = ["run", "main", "add_arguments", "format_table"]

PASSPHRASE = "bench passphrase, not a secret"
DEVICES = (1, 3, 5)
SAMPLE_TIMEOUT = 10.0
_now = time.monotonic_ns


def add_arguments(parser: argparse.ArgumentParser, *, shared: bool = True) -> None:
    g = parser.add_argument_group("devices")
    g.add_argument("--samples", type=int, default=None,
                   help="messages to each account [200; 20 with --quick]")
    if shared:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--quick", action="store_true", help="a short smoke run")


async def _link(owner: Any, home: Path, relay_url: str, name: str) -> Any:
    from tenchat.client.linking import grant, read_request, start_link

    pending = await start_link(home, relay_url, name)
    finishing = asyncio.ensure_future(pending.finish(PASSPHRASE, timeout=60))
    code, request = await read_request(owner, pending.text)
    await grant(owner, code, request, timeout=60)
    return await finishing


async def _scenario(relay: BenchRelay, home: Path, samples: int) -> dict[str, Any]:
    from tenchat.client.events import MessageAdded
    from tenchat.client.service import Client

    sender = await Client.create(home / "sender", relay.url, "sender", PASSPHRASE)
    accounts: dict[int, list[Any]] = {}
    for n in DEVICES:
        first = await Client.create(home / f"r{n}", relay.url, f"r{n}dev", PASSPHRASE)
        accounts[n] = [first] + [await _link(first, home / f"r{n}-{i}", relay.url, f"d{i}")
                                 for i in range(2, n + 1)]
    everyone = [sender] + [c for devs in accounts.values() for c in devs]
    waiting: dict[bytes, tuple[set[int], asyncio.Future[int]]] = {}

    def listen(idx: int, client: Any) -> None:
        def on(event: Any) -> None:
            if isinstance(event, MessageAdded) and not event.message.outgoing:
                entry = waiting.get(event.message.id)
                if entry is not None:
                    entry[0].discard(idx)
                    if not entry[0] and not entry[1].done():
                        entry[1].set_result(_now())
        client.subscribe(on)

    for i, client in enumerate(everyone):
        listen(i, client)
    runs = [asyncio.create_task(c.run()) for c in everyone]
    cpu = ProcCpu(relay.pid)
    lat: dict[int, list[int]] = {n: [] for n in DEVICES}
    relay_cpu: dict[int, float] = dict.fromkeys(DEVICES, 0.0)
    lost = 0
    try:
        for n in DEVICES:  # sessions with every device before measuring
            await sender.send_text(f"r{n}dev", "hello")
        await asyncio.sleep(1.0)
        for _ in range(samples):
            for n in DEVICES:
                devs = accounts[n]
                ids = {everyone.index(c) for c in devs}
                loop = asyncio.get_running_loop()
                fut: asyncio.Future[int] = loop.create_future()
                message_id = random.randbytes(16)
                waiting[message_id] = (ids, fut)
                before = cpu.sample()
                t0 = _now()
                await sender.send_text_to(devs[0].user, f"to {n} devices", msg_id=message_id)
                try:
                    async with asyncio.timeout(SAMPLE_TIMEOUT):
                        lat[n].append(await fut - t0)
                except TimeoutError:
                    lost += 1
                relay_cpu[n] += cpu.sample().total - before.total
                del waiting[message_id]
                await asyncio.sleep(random.uniform(0.010, 0.020))
    finally:
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for c in everyone:
            await c.close()
    out: dict[str, Any] = {"lost": lost, "by_devices": {}}
    for n in DEVICES:
        got = max(len(lat[n]), 1)
        out["by_devices"][str(n)] = {
            "delivered_all_ms": percentiles(lat[n]),
            "relay_cpu_ms_per_msg": 1000 * relay_cpu[n] / got,
            "relay_cpu_ms_per_copy": 1000 * relay_cpu[n] / got / n,
        }
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    samples = args.samples if args.samples is not None else (20 if quick else 200)
    out: dict[str, Any] = {"scenario": "devices", **environment(),
                           "settings": {"samples": samples, "devices": list(DEVICES)}}
    with BenchRelay(name="bench-devices") as relay, \
            tempfile.TemporaryDirectory(prefix="tenchat-bench-homes-") as homes:
        out["data_fs"] = fs_type(relay.data_dir)
        out.update(asyncio.run(_scenario(relay, Path(homes), samples)))
    one, five = (out["by_devices"][k]["delivered_all_ms"]["p99"] for k in ("1", "5"))
    out["target"] = {"of": "p99, 5 devices < 2 × 1 device", "ratio": five / one,
                     "holds": five < 2 * one}
    out["ok"] = out["lost"] == 0
    return out


def format_table(out: dict[str, Any]) -> str:
    rows = [f"{'devices':<10}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
            f"{'relay CPU-ms/msg':>18}{'/copy':>9}"]
    for n, r in out["by_devices"].items():
        st = r["delivered_all_ms"]
        rows.append(f"{n:<10}{st['n']:>6}{ms(st['p50']):>9}{ms(st['p99']):>9}"
                    f"{ms(st['max']):>9}{r['relay_cpu_ms_per_msg']:>18.2f}"
                    f"{r['relay_cpu_ms_per_copy']:>9.2f}")
    t = out["target"]
    return "\n".join([
        "tenchat multi-device fan-out: send → MessageAdded on every device of the recipient",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}",
        f"  relay     own process, SQLite on {out['data_fs']}; every client in-process, "
        "running Client.run()",
        f"  samples   {out['settings']['samples']} per account, interleaved; "
        f"{out['lost']} lost",
        "",
        *rows,
        "",
        f"target: {t['of']}: ratio {t['ratio']:.2f}, {'holds' if t['holds'] else 'MISSES'}",
    ])


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.devices", __doc__, add_arguments, run,
                         format_table, argv)


if __name__ == "__main__":
    sys.exit(main())
