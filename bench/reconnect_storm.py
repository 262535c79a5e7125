"""Reconnect storm and offline drain: N clients with M queued messages each reconnect at
once and drain their queues.

    python -m bench.reconnect_storm [--clients N] [--queued M] [--storm-procs P]
                                    [--json] [--quick]

1. Prepare. The relay runs as its own process (``BenchRelay``). Load-generator
   processes (``--storm-procs``) create the N clients (each its own Ed25519 identity:
   hello, auth, a signed prekey), disconnect them, and queue M messages (200-byte
   bodies) for each from one sender connection per process (256 Sends outstanding),
   waiting for every Stored answer.
2. Storm. At one instant every client connects, says hello, authenticates and
   subscribes; the relay drains its queue (Deliver frames, then Synced); the client
   acks what it got (an Ack every 256 messages and at Synced) and is done once all
   M arrived and every Ack was answered (the relay deleted them).

Reported: reconnects/s = N / (last client authenticated − storm start); drained
messages/s = N·M / (last client done − storm start); per-client p50/p99 of
start → authenticated and start → drained. The clock is CLOCK_MONOTONIC, the same
in every process of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import multiprocessing as mp
import os
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from nacl.signing import SigningKey

from tenchat.common import frames, identity
from tenchat.common.frames import (
    Ack,
    Deliver,
    Error,
    Ok,
    PrekeyStatus,
    PublishPrekeys,
    Reply,
    Send,
    SignedPrekey,
    Stored,
    Subscribe,
    Synced,
)

from ._group_worker import raise_fd_limit
from ._relay import BenchRelay, ProcCpu
from ._report import environment, ms, percentiles, scenario_main
from ._worker import BODY_SIZE, Link, _expect

__all__ = ["run", "main", "add_arguments", "format_table"]

FILL_WINDOW = 256  # outstanding Sends of a filling sender (the relay's in-flight limit: 512)
ACK_EVERY = 256
PREPARE_TIMEOUT = 600.0
STORM_TIMEOUT = 300.0
START_DELAY = 0.5
CONNECT_CONCURRENCY = 64  # while preparing only; the storm itself is unthrottled
_now = time.monotonic_ns


def add_arguments(parser: argparse.ArgumentParser, *, shared: bool = True) -> None:
    parser.add_argument("--clients", type=int, default=None,
                        help="clients reconnecting at once [1000; 100 with --quick]")
    parser.add_argument("--queued", type=int, default=None,
                        help="messages queued per client [100; 20 with --quick]")
    parser.add_argument("--storm-procs", type=int, default=2, dest="storm_procs",
                        help="load-generator processes [2]")
    if shared:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--quick", action="store_true", help="a short smoke run")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    clients = args.clients if args.clients is not None else (100 if quick else 1000)
    queued = args.queued if args.queued is not None else (20 if quick else 100)
    if not 1 <= clients <= 100_000:
        raise SystemExit("error: --clients must be 1..100000")
    if not 1 <= queued <= 100_000:
        raise SystemExit("error: --queued must be 1..100000")
    return {"clients": clients, "queued": queued,
            "procs": max(1, min(args.storm_procs, clients)), "body_bytes": BODY_SIZE,
            "uvloop": importlib.util.find_spec("uvloop") is not None}


# --- the load-generator process --------------------------------------------------------------


async def _new_client(url: str, sem: asyncio.Semaphore) -> SigningKey:
    async with sem:
        key = SigningKey.generate()
        link = await Link.login(url, key)
        pub = os.urandom(32)
        spk = SignedPrekey(key_id=1, pub=pub,
                           sig=key.sign(identity.signed_prekey_message(pub)).signature)
        _expect(await link.call(PublishPrekeys(id=next(link.ids), user=bytes(key.verify_key),
                                               spk=spk)), PrekeyStatus)
        await link.close()
        return key


async def _fill(url: str, keys: list[SigningKey], queued: int) -> int:
    """Queue ``queued`` messages for every key from one sender; the number stored."""
    sender = await Link.login(url, SigningKey.generate())
    credit = asyncio.Event()
    state = {"outstanding": 0, "stored": 0}
    errors: list[str] = []

    def on_frame(frame: Reply) -> None:
        if type(frame) is Stored:
            state["stored"] += 1
        elif isinstance(frame, Error):
            errors.append(f"{frame.error}: {frame.message}")
        else:
            return
        state["outstanding"] -= 1
        credit.set()

    sender.handler = on_frame
    pad = os.urandom(BODY_SIZE)
    counter = itertools.count(1)
    prefix = os.urandom(8)
    for _ in range(queued):
        for key in keys:
            while state["outstanding"] >= FILL_WINDOW:
                credit.clear()
                await credit.wait()
            state["outstanding"] += 1
            await sender.ws.send(frames.encode(Send(
                id=next(sender.ids), to=bytes(key.verify_key),
                msg=prefix + next(counter).to_bytes(8, "big"), body=pad)))
    deadline = time.monotonic() + PREPARE_TIMEOUT
    while state["outstanding"] and time.monotonic() < deadline:
        credit.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(credit.wait(), 1.0)
    await sender.close()
    if errors:
        raise RuntimeError(f"filling queues: {errors[:3]}")
    return state["stored"]


async def _storm_one(url: str, key: SigningKey, queued: int) -> dict[str, Any]:
    link = await Link.login(url, key)
    authed = _now()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    st = {"received": 0, "acked": 0, "synced": False}
    pending: list[int] = []
    in_flight: dict[int, int] = {}
    errors: list[str] = []

    def flush() -> None:
        while pending:
            seqs = pending[:4096]
            del pending[:4096]
            rid = next(link.ids)
            in_flight[rid] = len(seqs)
            asyncio.ensure_future(link.ws.send(frames.encode(Ack(id=rid, seqs=seqs))))

    def check() -> None:
        if st["synced"] and not in_flight and not pending and not done.done():
            done.set_result(None)

    def on_frame(frame: Reply) -> None:
        if isinstance(frame, Deliver):
            st["received"] += 1
            pending.append(frame.seq)
            if len(pending) >= ACK_EVERY:
                flush()
        elif isinstance(frame, Ok):
            n = in_flight.pop(frame.id, None)
            if n is not None:
                st["acked"] += n
                check()
        elif isinstance(frame, Synced):
            st["synced"] = True
            flush()
            check()
        elif isinstance(frame, Error):
            errors.append(f"{frame.error}: {frame.message}")

    link.handler = on_frame
    await link.ws.send(frames.encode(Subscribe(id=next(link.ids))))
    try:
        await asyncio.wait_for(done, STORM_TIMEOUT)
    except TimeoutError:
        errors.append(f"not drained in {STORM_TIMEOUT:.0f}s")
    drained = _now()
    await link.close()
    return {"authed_ns": authed, "drained_ns": drained, "received": st["received"],
            "acked": st["acked"], "errors": errors}


async def _serve(pipe: Connection, url: str, count: int, queued: int) -> None:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    keys = list(await asyncio.gather(*(_new_client(url, sem) for _ in range(count))))
    stored = await _fill(url, keys, queued)
    pipe.send(("ready", {"clients": len(keys), "stored": stored}))
    kind, cmd = await loop.run_in_executor(None, pipe.recv)
    if kind != "storm":
        return
    await asyncio.sleep(max(0, cmd["start_at_ns"] - _now()) / 1e9)
    results = await asyncio.gather(*(_storm_one(url, k, queued) for k in keys),
                                   return_exceptions=True)
    out: dict[str, Any] = {"authed_ns": [], "drained_ns": [], "received": 0, "acked": 0,
                           "errors": []}
    for r in results:
        if isinstance(r, BaseException):
            out["errors"].append(f"{type(r).__name__}: {r}")
            continue
        out["authed_ns"].append(r["authed_ns"])
        out["drained_ns"].append(r["drained_ns"])
        out["received"] += r["received"]
        out["acked"] += r["acked"]
        out["errors"] += r["errors"]
    out["errors"] = out["errors"][:10]
    pipe.send(("result", out))


def _worker(pipe: Connection, url: str, count: int, queued: int, use_uvloop: bool) -> None:
    try:
        raise_fd_limit(count + 256)
        coro = _serve(pipe, url, count, queued)
        if use_uvloop:
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        raise SystemExit(1) from None


def _recv(pipe: Connection, want: str, timeout: float) -> dict[str, Any]:
    if not pipe.poll(timeout):
        raise RuntimeError(f"a load generator sent no {want!r} in {timeout:.0f}s")
    try:
        kind, body = pipe.recv()
    except EOFError:
        raise RuntimeError("a load generator exited unexpectedly") from None
    if kind == "error":
        raise RuntimeError(f"load generator failed: {body}")
    return body


# --- the scenario -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    s = _settings(args)
    raise_fd_limit(s["clients"] + 256)
    ctx = mp.get_context("spawn")
    out: dict[str, Any] = {"scenario": "reconnect_storm", **environment(), "settings": s}
    with BenchRelay() as relay:
        pipes: list[Connection] = []
        procs: list[Any] = []
        shares = [s["clients"] // s["procs"]] * s["procs"]
        shares[0] += s["clients"] - sum(shares)
        try:
            t0 = time.monotonic()
            for n in shares:
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=_worker,
                                   args=(theirs, relay.url, n, s["queued"], s["uvloop"]),
                                   daemon=True)
                proc.start()
                theirs.close()
                pipes.append(ours)
                procs.append(proc)
            ready = [_recv(p, "ready", PREPARE_TIMEOUT) for p in pipes]
            out["prepare"] = {"seconds": time.monotonic() - t0,
                              "clients": sum(r["clients"] for r in ready),
                              "queued": sum(r["stored"] for r in ready)}
            cpu = ProcCpu(relay.pid)
            start = _now() + int(START_DELAY * 1e9)
            for p in pipes:
                p.send(("storm", {"start_at_ns": start}))
            time.sleep(START_DELAY)
            a = cpu.sample()
            results = [_recv(p, "result", STORM_TIMEOUT + 60) for p in pipes]
            b = cpu.sample()
        finally:
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
            for pipe in pipes:
                pipe.close()
        out["relay_db_bytes"] = relay.db_bytes()
    authed = [t - start for r in results for t in r["authed_ns"]]
    drained = [t - start for r in results for t in r["drained_ns"]]
    total = s["clients"] * s["queued"]
    received = sum(r["received"] for r in results)
    acked = sum(r["acked"] for r in results)
    last_auth = max(authed) / 1e9 if authed else float("nan")
    last_drain = max(drained) / 1e9 if drained else float("nan")
    out["storm"] = {
        "reconnected": len(authed),
        "reconnects_per_s": len(authed) / last_auth if authed else 0.0,
        "all_reconnected_s": last_auth,
        "expected_messages": total,
        "received": received,
        "acked": acked,
        "drained_msgs_per_s": acked / last_drain if drained else 0.0,
        "all_drained_s": last_drain,
        "reconnect_ms": percentiles(authed),
        "drain_ms": percentiles(drained),
        "relay_cpu_pct": ProcCpu.percent(a, b)[1],
        "errors": [e for r in results for e in r["errors"]][:10],
    }
    st = out["storm"]
    out["ok"] = (st["reconnected"] == s["clients"] and received == acked == total
                 and out["prepare"]["queued"] == total and not st["errors"])
    return out


def format_table(out: dict[str, Any]) -> str:
    s, st = out["settings"], out["storm"]
    lines = [
        "reconnect storm and offline drain",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}",
        f"  python    {out['implementation']} {out['python']}",
        f"  load      {s['clients']:,} clients x {s['queued']:,} queued {s['body_bytes']}-byte"
        f" messages, reconnecting at once from {s['procs']} process(es)"
        f" (queues filled in {out['prepare']['seconds']:.1f} s)",
        "",
        f"{'measure':<34}{'figure':>12}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}",
        f"{'reconnects (hello+auth)':<34}{st['reconnects_per_s']:>10,.0f}/s"
        f"{ms(st['reconnect_ms']['p50']):>10}{ms(st['reconnect_ms']['p99']):>10}"
        f"{ms(st['reconnect_ms']['max']):>10}",
        f"{'drained (delivered + acked)':<34}{st['drained_msgs_per_s']:>10,.0f}/s"
        f"{ms(st['drain_ms']['p50']):>10}{ms(st['drain_ms']['p99']):>10}"
        f"{ms(st['drain_ms']['max']):>10}",
        "",
        f"all {st['reconnected']:,} reconnected in {st['all_reconnected_s']:.2f} s,"
        f" {st['acked']:,} of {st['expected_messages']:,} messages drained in"
        f" {st['all_drained_s']:.2f} s; relay cpu {st['relay_cpu_pct']:.0f}% of one core;"
        " per-client times from the storm's start",
    ]
    if not out["ok"]:
        lines += ["", "PROBLEMS:", f"received {st['received']}, acked {st['acked']},"
                  f" queued {out['prepare']['queued']}, errors {st['errors'][:3]}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.reconnect_storm", __doc__, add_arguments, run,
                         format_table, argv)


if __name__ == "__main__":
    sys.exit(main())
