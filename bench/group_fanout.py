"""Group messages: stored once, readable by every member (docs/performance.md: a message to a
200,000-member group stored and readable by all in < 50 ms; seed target < 2 s).

    python -m bench.group_fanout [--members N] [--online N] [--posts N] [--burst N]
                                 [--member-procs P] [--json] [--quick]

1. Prepare. Start the relay (its own process) on a temporary data dir; the
   owner creates the group over the protocol (a signed ``create`` record in a
   ``group_change``). Stop the relay; a short helper process opens the relay's
   SQLite data through ``relay.storage.SQLiteStore`` and calls
   ``bulk_add_members`` with ``--members`` random 32-byte ids plus ``--online``
   real identities (Ed25519 keys the benchmark holds, so they can log in);
   restart the relay on the same data. Bulk-added members are not in the
   signed chain (clients would not accept them); the relay treats them as
   members in every way that costs it something.
2. Stored and readable (nobody subscribed). ``--posts`` times: the owner sends
   one ``group_send`` (200-byte body). *stored* = send → ``group_stored`` (the
   relay committed one log row). *readable* = send → the entry arriving at a
   member that was offline: a fresh connection of a real member (connect and
   auth done before the send, its cursor acked to the log's end, not
   subscribed) sends ``subscribe`` the moment ``group_stored`` arrives, and the
   entry comes in its drain (before ``synced``). A member's read is one
   indexed query from its cursor, the same for each of the group's members, so
   this is the time by which every member can read it.
3. Online members. ``--online`` members connect, authenticate and subscribe
   from ``--member-procs`` load-generator processes (the fd limit raised with
   ``setrlimit``). (a) Paced: ``--posts`` posts, one every ``--interval`` ms;
   per post send → delivered to all online members (the last ``gmsg`` of it to
   arrive), p50 / p99. (b) Burst: ``--burst`` posts pipelined (256
   outstanding); deliveries/s = ``gmsg`` pushes received by all members /
   (last delivery − first send). Members do not ``group_ack`` during the run.

Everything runs on loopback and is bounded: fixed counts, and timeouts on every
wait (``DRAIN_TIMEOUT`` for deliveries).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import msgspec
from nacl.signing import SigningKey

from tenchat.common import frames
from tenchat.common.frames import (
    GroupAck,
    GroupChangeReq,
    GroupDeliver,
    GroupSend,
    GroupStored,
    Ok,
    Reply,
    Subscribe,
    Synced,
)
from tenchat.common.groups import GENESIS, GroupChange, sign_change

from ._group_worker import bulk_add_main, members_main, raise_fd_limit
from ._relay import BenchRelay, ProcCpu, fs_type, machine_busy
from ._report import environment, ms, percentiles, scenario_main
from ._worker import BODY_SIZE, SETUP_TIMEOUT, Link

__all__ = ["run", "main", "add_arguments", "format_table"]

TARGET_MEMBERS = 200_000  # the target is stated for a group of this size
TARGET_MS = 50.0  # stored and readable by all
SEED_TARGET_MS = 2000.0
WINDOW = 256  # outstanding group_send requests in the burst (relay limit: 512)
DRAIN_TIMEOUT = 60.0  # seconds to wait for deliveries after posting
BULK_TIMEOUT = 300.0
_now = time.monotonic_ns
_F = TypeVar("_F", bound=msgspec.Struct)


def add_arguments(parser: argparse.ArgumentParser, *, shared: bool = True) -> None:
    """This scenario's options; ``shared=False`` leaves out --json, --quick and --sync
    (``python -m bench`` adds them once for every scenario)."""
    g = parser.add_argument_group("group_fanout")
    g.add_argument(
        "--members",
        type=int,
        default=None,
        help="random member ids bulk-added to the group [200,000; 5,000 with --quick]",
    )
    g.add_argument(
        "--online",
        type=int,
        default=None,
        help="real member identities, all online in phase 3 [1,000; 100 with --quick]",
    )
    g.add_argument(
        "--posts",
        type=int,
        default=None,
        help="posts measured one at a time, per latency phase [50; 10 with --quick]",
    )
    g.add_argument(
        "--burst",
        type=int,
        default=None,
        help="posts pipelined in the deliveries/s phase [500; 50 with --quick]",
    )
    g.add_argument(
        "--interval",
        type=float,
        default=None,
        help="ms between paced posts with members online [250; 100 with --quick]",
    )
    g.add_argument(
        "--member-procs",
        type=int,
        default=None,
        help="load generator processes holding the online members [2; 1 with --quick]",
    )
    if shared:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--quick", action="store_true", help="a short smoke run")
        parser.add_argument(
            "--sync",
            choices=["full", "normal"],
            default=None,
            help="pass --sync to the relay [the relay's default: full]",
        )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick

    def pick(value: int | None, full: int, small: int) -> int:
        return value if value is not None else (small if quick else full)

    members = pick(args.members, 200_000, 5_000)
    online = pick(args.online, 1_000, 100)
    posts = pick(args.posts, 50, 10)
    burst = pick(args.burst, 500, 50)
    interval_ms: float = args.interval if args.interval is not None else (
        100.0 if quick else 250.0)
    if not 0 <= members <= 2_000_000:
        raise SystemExit("error: --members must be 0..2,000,000")
    if not 1 <= online <= 5_000:
        raise SystemExit("error: --online must be 1..5,000")
    if not 1 <= posts <= 1_000 or not 1 <= burst <= 10_000:
        raise SystemExit("error: --posts must be 1..1,000 and --burst 1..10,000")
    if not 1 <= interval_ms <= 10_000:
        raise SystemExit("error: --interval must be 1..10,000 ms")
    return {
        "members": members,
        "online": online,
        "posts": posts,
        "burst": burst,
        "member_procs": max(1, min(pick(args.member_procs, 2, 1), online, 16)),
        "interval_ms": interval_ms,
        "sync": getattr(args, "sync", None),
        "uvloop": importlib.util.find_spec("uvloop") is not None,
    }


# --- processes ------------------------------------------------------------------------------


def _recv(pipe: Connection, timeout: float, want: str) -> dict[str, Any]:
    if not pipe.poll(timeout):
        raise RuntimeError(f"a helper process sent no {want!r} in {timeout:.0f}s")
    try:
        kind, body = pipe.recv()
    except EOFError:
        raise RuntimeError("a helper process exited unexpectedly") from None
    if kind == "error":
        raise RuntimeError(f"helper process failed: {body}")
    return body


def _bulk_add(db_path: str, group: bytes, users: list[bytes], n_random: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=bulk_add_main, args=(theirs, db_path, group, users, n_random),
                       name="bench-bulk-add", daemon=True)  # fmt: skip
    t0 = time.perf_counter()
    proc.start()
    theirs.close()
    try:
        body = _recv(ours, BULK_TIMEOUT, "added")
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        ours.close()
    return {**body, "process_seconds": time.perf_counter() - t0}


class _Members:
    """The load generator processes holding the online members."""

    def __init__(self, url: str, seeds: list[bytes], group: bytes, procs: int, uv: bool) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        for w in range(procs):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=members_main, args=(theirs, url, seeds[w::procs], group, uv),
                               name=f"bench-members-{w}", daemon=True)  # fmt: skip
            proc.start()
            theirs.close()
            self.pipes.append(ours)
            self.procs.append(proc)
        timeout = 60 + len(seeds) / 20
        self.ready = [_recv(p, timeout, "ready") for p in self.pipes]

    def command(self, kind: str, cmd: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send((kind, cmd))
        return [_recv(p, timeout, kind) for p in self.pipes]

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop", {}))
        for proc in self.procs:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for pipe in self.pipes:
            pipe.close()


# --- the owner (in this process) -------------------------------------------------------------


class Owner:
    """The group's owner: one authenticated connection (not subscribed)."""

    def __init__(self, key: SigningKey, group: bytes) -> None:
        self.key = key
        self.group = group
        self.link: Link | None = None
        self.pad = os.urandom(BODY_SIZE)

    async def login(self, url: str) -> None:
        self.link = await Link.login(url, self.key)

    async def create(self) -> GroupStored:
        assert self.link is not None
        change = GroupChange(group=self.group, version=1, prev=GENESIS,
                             actor=bytes(self.key.verify_key), at=time.time_ns() // 1_000_000,
                             op="create", name="bench group", topic="group_fanout")  # fmt: skip
        record = sign_change(change, lambda m: self.key.sign(m).signature)
        stored = await self.link.call(GroupChangeReq(id=next(self.link.ids), record=record))
        return _want(stored, GroupStored)

    def send_frame(self) -> tuple[int, bytes]:
        assert self.link is not None
        rid = next(self.link.ids)
        frame = GroupSend(id=rid, group=self.group, msg=os.urandom(16), body=self.pad)
        return rid, frames.encode(frame)

    async def post(self) -> tuple[int, int, GroupStored]:
        """One post; (send ns, stored ns, answer)."""
        assert self.link is not None
        rid, data = self.send_frame()
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.link._waiting[rid] = fut
        t0 = _now()
        await self.link.ws.send(data)
        stored = await asyncio.wait_for(fut, SETUP_TIMEOUT)
        return t0, _now(), _want(stored, GroupStored)

    async def burst(self, count: int) -> tuple[int, dict[int, int], dict[int, int], list[str]]:
        """``count`` posts with ``WINDOW`` outstanding: (first send ns, gseq -> send ns,
        gseq -> stored ns, errors)."""
        link = self.link
        assert link is not None
        sent_at: dict[int, int] = {}
        send_ns: dict[int, int] = {}
        stored_ns: dict[int, int] = {}
        errors: list[str] = []
        credit = asyncio.Event()
        done = asyncio.Event()
        answered = 0

        def on_frame(frame: Reply) -> None:
            nonlocal answered
            t0 = sent_at.pop(getattr(frame, "id", None) or 0, None)
            if t0 is None:
                return
            if type(frame) is GroupStored:
                send_ns[frame.gseq] = t0
                stored_ns[frame.gseq] = _now()
            elif len(errors) < 10:
                errors.append(repr(frame))
            answered += 1
            credit.set()
            if answered == count:
                done.set()

        previous, link.handler = link.handler, on_frame
        try:
            first = _now()
            for _ in range(count):
                while len(sent_at) >= WINDOW:
                    credit.clear()
                    await credit.wait()
                rid, data = self.send_frame()
                sent_at[rid] = _now()
                await link.ws.send(data)
            await asyncio.wait_for(done.wait(), DRAIN_TIMEOUT)
        finally:
            link.handler = previous
        return first, send_ns, stored_ns, errors


def _want(frame: msgspec.Struct, kind: type[_F]) -> _F:
    if not isinstance(frame, kind):
        raise RuntimeError(f"expected {kind.__name__}, got {frame!r}")
    return frame


async def _read_fresh(url: str, key: SigningKey, owner: Owner, last: int) -> dict[str, Any]:
    """Phase 2, one post: a member that was offline reads it right after it is stored."""
    reader = await Link.login(url, key)
    try:
        _want(await reader.call(GroupAck(id=next(reader.ids), group=owner.group, upto=last)), Ok)
        drained: list[int] = []
        arrived: dict[int, int] = {}
        synced = asyncio.Event()
        resolve = reader._resolve

        def on_frame(frame: Reply) -> None:
            if type(frame) is GroupDeliver:
                arrived.setdefault(frame.gseq, _now())
                drained.append(frame.gseq)
            elif type(frame) is Synced:
                synced.set()
            else:
                resolve(frame)

        reader.handler = on_frame
        t0, t1, stored = await owner.post()
        sub = Subscribe(id=next(reader.ids))
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        reader._waiting[sub.id] = fut
        await reader.ws.send(frames.encode(sub))
        _want(await asyncio.wait_for(fut, SETUP_TIMEOUT), Ok)
        await asyncio.wait_for(synced.wait(), SETUP_TIMEOUT)
        t2 = arrived.get(stored.gseq)
        return {
            "gseq": stored.gseq,
            "stored_ns": t1 - t0,
            "readable_ns": None if t2 is None else t2 - t0,
            "read_ns": None if t2 is None else t2 - t1,
            "drained": drained,
        }
    finally:
        await reader.close()


async def _prepare_group(url: str, owner: Owner) -> dict[str, Any]:
    t0 = time.perf_counter()
    await owner.login(url)
    stored = await owner.create()
    assert owner.link is not None
    await owner.link.close()
    owner.link = None
    return {"create_ms": (time.perf_counter() - t0) * 1e3, "create_gseq": stored.gseq}


async def _stored_readable(url: str, owner: Owner, keys: list[SigningKey], posts: int,
                           last: int) -> tuple[dict[str, Any], int]:  # fmt: skip
    await owner.login(url)
    rows = []
    errors = []
    for k in range(posts):
        row = await _read_fresh(url, keys[k % len(keys)], owner, last)
        last = row["gseq"]
        if row["readable_ns"] is None or row["drained"] != [row["gseq"]]:
            errors.append(f"post {k}: drain {row['drained'][:5]}, want [{row['gseq']}]")
        rows.append(row)
    result = {
        "posts": posts,
        "stored_ms": percentiles([r["stored_ns"] for r in rows]),
        "readable_ms": percentiles([r["readable_ns"] for r in rows if r["readable_ns"]]),
        "read_ms": percentiles([r["read_ns"] for r in rows if r["read_ns"]]),
        "errors": errors[:10],
    }
    return result, last


def _deliveries(results: list[dict[str, Any]], send_ns: dict[int, int], online: int
                ) -> tuple[list[int], int, int]:  # fmt: skip
    """(per post send → all delivered ns, deliveries counted, last delivery ns)."""
    per_post: list[int] = []
    total = 0
    last_any = 0
    for gseq, t0 in send_ns.items():
        count = 0
        last = 0
        for r in results:
            c, at = r["got"][gseq]
            count += c
            last = max(last, at)
        total += count
        last_any = max(last_any, last)
        if count >= online:
            per_post.append(last - t0)
    return per_post, total, last_any


async def _online_phase(owner: Owner, members: _Members, s: dict[str, Any],
                        relay_cpu: ProcCpu) -> dict[str, Any]:  # fmt: skip
    online = s["online"]
    # (a) paced
    send_ns: dict[int, int] = {}
    stored = []
    interval = s["interval_ms"] / 1e3
    start = time.monotonic()
    for k in range(s["posts"]):
        await asyncio.sleep(max(0.0, start + k * interval - time.monotonic()))
        t0, t1, st = await owner.post()
        send_ns[st.gseq] = t0
        stored.append(t1 - t0)
    cmd = {"gseqs": list(send_ns), "timeout": DRAIN_TIMEOUT}
    results = await asyncio.to_thread(members.command, "counts", cmd, DRAIN_TIMEOUT + 30)
    per_post, total, _ = _deliveries(results, send_ns, online)
    paced = {
        "posts": s["posts"],
        "interval_ms": s["interval_ms"],
        "stored_ms": percentiles(stored),
        "all_delivered_ms": percentiles(per_post),
        "deliveries": total,
        "expected": s["posts"] * online,
        "complete": all(r["complete"] for r in results),
    }
    # (b) burst
    await asyncio.to_thread(members.command, "mark", {}, 30)
    a, ma, pa0 = relay_cpu.sample(), machine_busy(), time.process_time()
    first, send_ns, stored_at, errors = await owner.burst(s["burst"])
    cmd = {"gseqs": list(send_ns), "timeout": DRAIN_TIMEOUT}
    results = await asyncio.to_thread(members.command, "counts", cmd, DRAIN_TIMEOUT + 30)
    b, mb, pa1 = relay_cpu.sample(), machine_busy(), time.process_time()
    per_post, total, last = _deliveries(results, send_ns, online)
    span = max(1, last - first) / 1e9
    wall = max(1e-9, b.at - a.at)
    main_pct, total_pct = ProcCpu.percent(a, b)
    busy = 100 * (mb[0] - ma[0]) / max(1, mb[1] - ma[1])  # % of all cores
    cores = os.cpu_count() or 1
    clients = [100 * r["cpu_s"] / wall for r in results]
    burst = {
        "posts": s["burst"],
        "window": WINDOW,
        "stored": len(stored_at),
        "deliveries": total,
        "expected": s["burst"] * online,
        "seconds": span,
        "deliveries_per_s": total / span,
        "posts_stored_per_s": len(stored_at) / max(1e-9, (max(stored_at.values(), default=first)
                                                          - first) / 1e9),
        "all_delivered_ms": percentiles(per_post),
        "complete": all(r["complete"] for r in results),
        "errors": errors,
        # CPU in % of one core from the first send to the counts being collected
        "relay_loop_pct": main_pct,
        "relay_total_pct": total_pct,
        "clients_pct": clients,
        "owner_pct": 100 * (pa1 - pa0) / wall,  # this process: the owner's connection
        "machine_busy_pct": busy,
        # In % of one core: kernel work not charged to our processes, and other programs.
        "other_pct": max(0.0, busy * cores - total_pct - sum(clients) - 100 * (pa1 - pa0) / wall),
        "dropped_connections": sum(r["dropped"] for r in results),
    }  # fmt: skip
    return {"paced": paced, "burst": burst}


def run(args: argparse.Namespace) -> dict[str, Any]:
    s = _settings(args)
    raise_fd_limit(s["online"] + 1024)  # the relay, started from here, inherits it
    relay_args = ["--sync", s["sync"]] if s["sync"] else []
    group = os.urandom(16)
    owner = Owner(SigningKey.generate(), group)
    seeds = [os.urandom(32) for _ in range(s["online"])]
    keys = [SigningKey(seed) for seed in seeds]
    with BenchRelay(name="bench-groups", args=relay_args) as relay:
        out: dict[str, Any] = {
            "scenario": "group_fanout",
            **environment(),
            "settings": {**s, "body_bytes": BODY_SIZE, "relay_sync": s["sync"] or "full"},
            "relay_command": " ".join(relay.command),
            "data_fs": fs_type(relay.data_dir),
        }
        prep = asyncio.run(_prepare_group(relay.url, owner))
        # Seed with the relay stopped: its data belongs to one process at a time.
        code = relay.stop()
        if code != 0:
            raise RuntimeError(f"relay exited with {code} when stopped for seeding")
        users = [bytes(k.verify_key) for k in keys]
        bulk = _bulk_add(str(relay.data_dir / "relay.sqlite3"), group, users, s["members"])
        relay.start()
        prep.update(bulk_add_s=bulk["seconds"], added=bulk["added"],
                    group_members=bulk["added"] + 1, db_bytes=relay.db_bytes())  # fmt: skip
        out["prepare"] = prep

        async def phases() -> None:
            sr, _last = await _stored_readable(
                relay.url, owner, keys, s["posts"], prep["create_gseq"]
            )
            out["stored_readable"] = sr
            t0 = time.perf_counter()
            members = await asyncio.to_thread(
                _Members, relay.url, seeds, group, s["member_procs"], s["uvloop"]
            )
            try:
                out["online"] = {
                    "members": sum(r["members"] for r in members.ready),
                    "procs": s["member_procs"],
                    "connect_s": time.perf_counter() - t0,
                    **await _online_phase(owner, members, s, ProcCpu(relay.pid)),
                }
            finally:
                await asyncio.to_thread(members.close)
                if owner.link is not None:
                    await owner.link.close()

        asyncio.run(phases())
        out["relay_db_bytes"] = relay.db_bytes()
    out["targets"] = _verdict(out)
    out["ok"] = _healthy(out)
    return out


def _verdict(out: dict[str, Any]) -> dict[str, Any]:
    sr = out["stored_readable"]
    paced = out["online"]["paced"]
    at_scale = out["prepare"]["group_members"] >= TARGET_MEMBERS
    worst = max(sr["readable_ms"]["p99"], paced["all_delivered_ms"]["p99"])
    return {
        "at_target_size": at_scale,
        "target_ms": TARGET_MS,
        "seed_target_ms": SEED_TARGET_MS,
        "worst_p99_ms": worst,
        "holds": worst < TARGET_MS,
        "holds_seed": worst < SEED_TARGET_MS,
    }


def _healthy(out: dict[str, Any]) -> bool:
    sr = out["stored_readable"]
    on = out["online"]
    return (
        not sr["errors"]
        and sr["readable_ms"]["n"] == sr["posts"]
        and on["members"] == out["settings"]["online"]
        and on["paced"]["complete"]
        and on["burst"]["complete"]
        and not on["burst"]["errors"]
        and on["burst"]["deliveries"] == on["burst"]["expected"]
    )


def _pct(values: list[float]) -> str:
    return " + ".join(f"{v:.0f}%" for v in values)


def format_table(out: dict[str, Any]) -> str:
    s = out["settings"]
    p = out["prepare"]
    sr = out["stored_readable"]
    on = out["online"]
    pa, bu = on["paced"], on["burst"]
    v = out["targets"]

    def row(label: str, figure: str, st: dict[str, Any] | None, lat: dict[str, Any]) -> str:
        sp = f"{ms(st['p50']):>12}{ms(st['p99']):>9}" if st else f"{'-':>12}{'-':>9}"
        return (f"{label:<50}{figure:>14}{sp}"
                f"{ms(lat['p50']):>11}{ms(lat['p99']):>9}{ms(lat['max']):>9}")  # fmt: skip

    lines = [
        "tenchat group fan-out benchmark",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}",
        f"  python    {out['implementation']} {out['python']}"
        f" ({'uvloop' if s['uvloop'] else 'asyncio'} in the load generators)",
        f"  relay     own process, sync={s['relay_sync']}, SQLite on {out['data_fs']}",
        f"  group     {p['group_members']:,} members ({s['members']:,} random ids + {s['online']:,}"
        f" real identities bulk-added in {p['bulk_add_s']:.2f} s, + the owner);"
        f" {s['body_bytes']}-byte posts",
        f"  online    {on['members']:,} members subscribed from {on['procs']} process(es)"
        f" (connected in {on['connect_s']:.1f} s)",
        "",
        f"{'measure':<50}{'figure':>14}{'stored p50':>12}{'p99':>9}"
        f"{'result p50':>11}{'p99':>9}{'max':>9}",
        row(f"stored / readable by an offline member ({sr['posts']})", "-",
            sr["stored_ms"], sr["readable_ms"]),
        row("  of which: subscribe → entry in its drain", "-", None, sr["read_ms"]),
        row(f"all {on['members']:,} online delivered"
            f" ({pa['posts']}, 1 per {pa['interval_ms']:g} ms)",
            f"{pa['deliveries']:,} msgs", pa["stored_ms"], pa["all_delivered_ms"]),
        row(f"burst of {bu['posts']} posts to {on['members']:,} online",
            f"{bu['deliveries_per_s']:,.0f}/s", None, bu["all_delivered_ms"]),
        "",
        "latencies in ms from the owner's send; 'result' = readable (row 1),",
        "subscribe → drain (row 2), delivered to the last online member (rows 3, 4);",
        "burst figure = gmsg deliveries/s to all online members",
        f"burst: {bu['deliveries']:,} deliveries in {bu['seconds']:.2f} s,"
        f" {bu['posts_stored_per_s']:,.0f} posts/s stored; relay {bu['relay_total_pct']:.0f}%"
        f" (event loop {bu['relay_loop_pct']:.0f}%), load generators {_pct(bu['clients_pct'])},"
        f" owner {bu['owner_pct']:.0f}%, everything else {bu['other_pct']:.0f}% (of one core);"
        f" machine {bu['machine_busy_pct']:.0f}% busy",
        f"target (200,000 members: stored and readable by all < {v['target_ms']:.0f} ms;"
        f" seed < 2 s): worst p99 {ms(v['worst_p99_ms'])} ms —"
        f" {'holds' if v['holds'] else 'MISSES'}"
        + ("" if v["at_target_size"] else f" (at {p['group_members']:,} members, not 200,000)"),
    ]  # fmt: skip
    problems = []
    if sr["errors"]:
        problems.append(f"stored/readable: {sr['errors'][:3]}")
    if not pa["complete"]:
        problems.append(f"paced: {pa['deliveries']}/{pa['expected']} deliveries")
    if not bu["complete"] or bu["errors"]:
        problems.append(
            f"burst: {bu['deliveries']}/{bu['expected']} deliveries, {bu['errors'][:3]}"
        )
    if on["members"] != s["online"]:
        problems.append(f"online: {on['members']} of {s['online']} members connected")
    if problems:
        lines += ["", "PROBLEMS:", *problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.group_fanout", __doc__, add_arguments, run,
                         format_table, argv)

if __name__ == "__main__":
    sys.exit(main())
