"""``python -m bench.soak``: hold thousands of connections on one relay for a while, with
steady traffic on some of them, and report the relay's memory and every error.

    python -m bench.soak --connections 2000 --seconds 60 [--active 0.1] [--rate 2]

The relay runs as its own process (as a user starts it). Load-generator processes open
the connections (hello, auth; every one publishes a signed prekey). A fraction
(``--active``) subscribes and sends ``--rate`` messages/s each to a partner, which acks
what it gets; the rest stay idle. Reported: connections held, the relay's RSS before
the connections, once they are all open (per connection) and at the end (growth during
the steady phase), messages stored and delivered, and errors by kind. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from nacl.signing import SigningKey
from websockets.asyncio.client import ClientConnection, connect

from tenchat.common import frames, identity
from tenchat.common.frames import (
    Ack,
    Auth,
    Deliver,
    Error,
    Hello,
    PublishPrekeys,
    Send,
    SignedPrekey,
    Stored,
    Subscribe,
)

from ._relay import BenchRelay

CONNECT_CONCURRENCY = 64


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Peer:
    """One connection of a load generator."""

    def __init__(self, ws: ClientConnection, key: SigningKey, stats: dict[str, int]) -> None:
        self.ws = ws
        self.key = key
        self.user = bytes(key.verify_key)
        self.stats = stats
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.reader = asyncio.create_task(self._read())

    async def request(self, frame: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        self.waiting[frame.id] = fut
        await self.ws.send(frames.encode(frame))
        return await asyncio.wait_for(fut, 30)

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                reply = frames.decode_reply(data)  # type: ignore[arg-type]
                rid = getattr(reply, "id", None)
                if isinstance(reply, Error):
                    self.stats[f"error {reply.error}"] = self.stats.get(f"error {reply.error}",
                                                                        0) + 1
                fut = self.waiting.pop(rid, None) if rid is not None else None
                if fut is not None:
                    if not fut.done():
                        fut.set_result(reply)
                elif isinstance(reply, Deliver):
                    self.stats["delivered"] += 1
                    await self.ws.send(frames.encode(Ack(id=next(self.ids) + 10**9,
                                                         seqs=[reply.seq])))
        except Exception as exc:  # a close is an error in a soak run
            key = f"connection {type(exc).__name__}"
            self.stats[key] = self.stats.get(key, 0) + 1


async def open_peer(url: str, name: str, stats: dict[str, int]) -> Peer:
    key = SigningKey.generate()
    ws = await connect(url, max_size=None, compression=None, open_timeout=60)
    peer = Peer(ws, key, stats)
    welcome = await peer.request(Hello(id=next(peer.ids), versions=[frames.PROTOCOL_VERSION]))
    origin = identity.relay_origin(url)
    sig = key.sign(identity.auth_message(origin, welcome.challenge)).signature
    await peer.request(Auth(id=next(peer.ids), user=peer.user, sig=sig, origin=origin))
    pub = os.urandom(32)
    spk = SignedPrekey(key_id=1, pub=pub,
                       sig=key.sign(identity.signed_prekey_message(pub)).signature)
    await peer.request(PublishPrekeys(id=next(peer.ids), user=peer.user, spk=spk, otks=[]))
    return peer


async def worker_main(pipe: Connection, url: str, name: str, count: int, active: int,
                      rate: float) -> None:
    stats: dict[str, int] = {"sent": 0, "stored": 0, "delivered": 0, "connect_failed": 0}
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Peer | None:
        async with sem:
            try:
                return await open_peer(url, name, stats)
            except Exception:
                stats["connect_failed"] += 1
                return None

    peers = [p for p in await asyncio.gather(*(one() for _ in range(count))) if p]
    pipe.send(("connected", len(peers), dict(stats)))
    seconds = pipe.recv()
    talkers = peers[:active - active % 2]
    for p in talkers:
        await p.request(Subscribe(id=next(p.ids)))

    async def talk(p: Peer, to: bytes, deadline: float) -> None:
        interval = 1.0 / rate
        next_at = time.monotonic() + interval * (hash(p.user) % 1000) / 1000
        while (now := time.monotonic()) < deadline:
            await asyncio.sleep(max(0.0, next_at - now))
            next_at += interval
            stats["sent"] += 1
            try:
                reply = await p.request(Send(id=next(p.ids), to=to, msg=os.urandom(16),
                                             body=os.urandom(200)))
            except Exception as exc:
                key = f"send {type(exc).__name__}"
                stats[key] = stats.get(key, 0) + 1
                continue
            if isinstance(reply, Stored):
                stats["stored"] += 1

    deadline = time.monotonic() + seconds
    pairs = [(talkers[i], talkers[i ^ 1].user) for i in range(len(talkers))]
    await asyncio.gather(*(talk(p, to, deadline) for p, to in pairs))
    await asyncio.sleep(2)  # the last deliveries and acks
    stats["open_at_end"] = sum(1 for p in peers if not p.reader.done())
    pipe.send(("done", dict(stats)))
    pipe.recv()
    for p in peers:
        with contextlib.suppress(Exception):
            await p.ws.close()


def _worker(pipe: Connection, *args: Any) -> None:
    asyncio.run(worker_main(pipe, *args))


def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    with BenchRelay(name="soak-relay", args=["--sync", args.sync]) as relay:
        base = rss(relay.pid)
        per = [args.connections // args.workers] * args.workers
        per[0] += args.connections - sum(per)
        active = int(args.connections * args.active)
        act = [active // args.workers] * args.workers
        act[0] += active - sum(act)
        pipes, procs = [], []
        started = time.monotonic()
        for n, a in zip(per, act, strict=True):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker,
                               args=(child, relay.url, "soak-relay", n, a, args.rate))
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        connected = sum(p.recv()[1] for p in pipes)
        connect_s = time.monotonic() - started
        time.sleep(2)
        after_connect = rss(relay.pid)
        for p in pipes:
            p.send(args.seconds)
        samples = [after_connect]
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            samples.append(rss(relay.pid))
        stats: dict[str, int] = {}
        for p in pipes:
            _, s = p.recv()
            for k, v in s.items():
                stats[k] = stats.get(k, 0) + v
        end = rss(relay.pid)
        for p in pipes:
            p.send("stop")
        for proc in procs:
            proc.join(30)
        alive = relay.proc is not None and relay.proc.poll() is None
    errors = {k: v for k, v in stats.items()
              if k.startswith(("error", "connection", "send ")) or k == "connect_failed"}
    errors = {k: v for k, v in errors.items() if v}
    return {
        "connections": args.connections, "connected": connected,
        "open_at_end": stats.get("open_at_end", 0), "active": active,
        "seconds": args.seconds, "connect_seconds": round(connect_s, 1),
        "rss_idle_mib": round(base / 2**20, 1),
        "rss_connected_mib": round(after_connect / 2**20, 1),
        "kib_per_connection": round((after_connect - base) / 1024 / max(connected, 1), 1),
        "rss_end_mib": round(end / 2**20, 1),
        "rss_max_mib": round(max(samples + [end]) / 2**20, 1),
        "growth_steady_mib": round((end - after_connect) / 2**20, 1),
        "sent": stats.get("sent", 0), "stored": stats.get("stored", 0),
        "delivered": stats.get("delivered", 0), "errors": errors, "relay_alive": alive,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--active", type=float, default=0.1,
                        help="fraction of connections that send and receive [0.1]")
    parser.add_argument("--rate", type=float, default=2.0,
                        help="messages/s each active connection sends [2]")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes [2]")
    parser.add_argument("--sync", choices=("full", "normal"), default="full")
    args = parser.parse_args(argv)
    out = run(args)
    width = max(len(k) for k in out)
    for key, value in out.items():
        print(f"{key:<{width}}  {value}")
    ok = out["relay_alive"] and not out["errors"] and out["open_at_end"] == out["connections"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
