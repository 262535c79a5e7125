"""NATS against Redis pub/sub as the bus between relay nodes (docs/design.md, Scale-out).

    python -m bench.bus_compare [--messages 10000] [--runs 3]

Starts a private ``nats-server`` and ``redis-server`` on free ports (nothing else
talks to them), then for each: one publisher connection and one subscriber
connection in this process, as two relay nodes have.

- **latency**: publish → receive at a paced 1,000 msg/s (p50/p99, ms), the rate the
  cluster benchmark's cross-node target is set at;
- **burst**: ``--messages`` published back to back; wall time, and CPU-seconds per
  10,000 messages of this process (both clients) and of the server (from /proc).

Messages are 300 bytes, about a relay event carrying one small stored message.
Needs ``nats-py`` (the ``cluster`` extra) and ``redis`` (``pip install redis``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

PAYLOAD = 300
RATE = 1000


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu(pid: int) -> float:
    """CPU-seconds (user + system) of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stamp(i: int) -> bytes:
    return time.perf_counter_ns().to_bytes(8, "big") + i.to_bytes(4, "big") + b"x" * (
        PAYLOAD - 12)


@dataclass
class Result:
    p50_ms: float
    p99_ms: float
    burst_s: float
    client_cpu: float  # CPU-seconds per 10,000 messages
    server_cpu: float


class Transport:
    """One pub/sub system: connect a publisher and a subscriber, publish, close."""

    name = ""

    async def open(self, on_message: Callable[[bytes], None]) -> None: ...
    async def publish(self, data: bytes) -> None: ...
    async def flush(self) -> None: ...
    async def close(self) -> None: ...


class Nats(Transport):
    name = "NATS (core pub/sub)"

    def __init__(self, url: str) -> None:
        self.url = url

    async def open(self, on_message: Callable[[bytes], None]) -> None:
        import nats

        self.pub = await nats.connect(self.url)
        self.sub = await nats.connect(self.url)

        async def received(msg: object) -> None:
            on_message(msg.data)  # type: ignore[attr-defined]

        await self.sub.subscribe("bench", cb=received, pending_msgs_limit=1_000_000)
        await self.sub.flush()

    async def publish(self, data: bytes) -> None:
        await self.pub.publish("bench", data)

    async def flush(self) -> None:
        await self.pub.flush()

    async def close(self) -> None:
        await self.pub.close()
        await self.sub.close()


class Redis(Transport):
    """Redis PUBLISH answers each message (its receiver count): one round trip each, or
    ``batch`` messages per round trip in a pipeline (what a relay would do per commit)."""

    name = "Redis pub/sub"

    def __init__(self, port: int, batch: int = 1) -> None:
        self.port = port
        self.batch = batch
        self._pending: list[bytes] = []

    async def open(self, on_message: Callable[[bytes], None]) -> None:
        import redis.asyncio as redis

        self.pub = redis.Redis(port=self.port)
        self.sub = redis.Redis(port=self.port)
        self.pubsub = self.sub.pubsub()
        await self.pubsub.subscribe("bench")
        await self.pubsub.get_message(timeout=1)  # the subscribe confirmation

        async def read() -> None:
            async for msg in self.pubsub.listen():
                if msg["type"] == "message":
                    on_message(msg["data"])

        self.reader = asyncio.create_task(read())

    async def publish(self, data: bytes) -> None:
        if self.batch == 1:
            await self.pub.publish("bench", data)
            return
        self._pending.append(data)
        if len(self._pending) >= self.batch:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            pipe = self.pub.pipeline(transaction=False)
            for data in self._pending:
                pipe.publish("bench", data)
            self._pending.clear()
            await pipe.execute()

    async def close(self) -> None:
        self.reader.cancel()
        await self.pubsub.aclose()
        await self.pub.aclose()
        await self.sub.aclose()


async def measure(transport: Transport, server_pid: int, messages: int) -> Result:
    latencies: list[float] = []
    received = 0
    done = asyncio.Event()
    want = 0

    def on_message(data: bytes) -> None:
        nonlocal received
        latencies.append((time.perf_counter_ns() - int.from_bytes(data[:8], "big")) / 1e6)
        received += 1
        if received >= want:
            done.set()

    await transport.open(on_message)
    try:
        # Paced: 1,000 msg/s for 2 s.
        want, n = 2 * RATE, 2 * RATE
        start = time.perf_counter()
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / RATE - time.perf_counter()))
            await transport.publish(_stamp(i))
            await transport.flush()
        await asyncio.wait_for(done.wait(), 30)
        lat = sorted(latencies)
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
        # Burst: back to back.
        latencies.clear()
        received, want = 0, messages
        done.clear()
        cpu0, srv0, t0 = time.process_time(), _cpu(server_pid), time.perf_counter()
        for i in range(messages):
            await transport.publish(_stamp(i))
        await transport.flush()
        await asyncio.wait_for(done.wait(), 120)
        wall = time.perf_counter() - t0
        per = 10_000 / messages
        return Result(p50, p99, wall, (time.process_time() - cpu0) * per,
                      (_cpu(server_pid) - srv0) * per)
    finally:
        await transport.close()


def _wait_port(port: int, proc: subprocess.Popen[bytes], program: str) -> None:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{program} exited")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


def run_one(make: Callable[[], tuple[list[str], Callable[[int], Transport]]],
            messages: int) -> Result:
    argv, factory = make()
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else int(
        argv[argv.index("-p") + 1])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc, argv[0])
        return asyncio.run(measure(factory(port), proc.pid, messages))
    finally:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    nats_bin, redis_bin = shutil.which("nats-server"), shutil.which("redis-server")
    if not nats_bin or not redis_bin:
        print("error: needs nats-server and redis-server on PATH", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="bus-bench-")

    def nats_setup() -> tuple[list[str], Callable[[int], Transport]]:
        port = free_port()
        return ([nats_bin, "-a", "127.0.0.1", "-p", str(port)],
                lambda p: Nats(f"nats://127.0.0.1:{p}"))

    def redis_setup() -> tuple[list[str], Callable[[int], Transport]]:
        port = free_port()
        return ([redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", tmp], Redis)

    print(f"{args.messages} messages of {PAYLOAD} bytes, {args.runs} runs, median; "
          f"{os.cpu_count()} cores")
    print("| bus | p50 ms @1k/s | p99 ms @1k/s | burst msgs/s | client CPU-s /10k "
          "| server CPU-s /10k |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    def redis_pipelined() -> tuple[list[str], Callable[[int], Transport]]:
        argv, _ = redis_setup()
        return argv, lambda p: Redis(p, batch=100)

    for name, setup in (("NATS (core pub/sub)", nats_setup), ("Redis pub/sub", redis_setup),
                        ("Redis pub/sub, pipelined by 100", redis_pipelined)):
        runs = [run_one(setup, args.messages) for _ in range(args.runs)]

        def med(key: str, runs: list[Result] = runs) -> float:
            return statistics.median(getattr(r, key) for r in runs)

        print(f"| {name} | {med('p50_ms'):.3f} | {med('p99_ms'):.3f} "
              f"| {args.messages / med('burst_s'):,.0f} | {med('client_cpu'):.3f} "
              f"| {med('server_cpu'):.3f} |")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
