"""The load generator: one process driving sender/recipient pairs over real WebSockets.

Runs in a process of its own (started by :mod:`bench.relay_throughput` through
``multiprocessing``, spawn), so its CPU never shares an event loop with the
relay's or with another generator's. It takes commands over a pipe:

- ``("throughput", {...})`` — every sender pipelines Send frames (a window of
  outstanding requests each) until a deadline; a message counts as *durable*
  once its Stored answer reached the sender AND it was delivered to the
  recipient AND the recipient's Ack of it was answered.
- ``("latency", {...})`` — paced sends at a fixed rate; send → Stored and
  send → delivered, in nanoseconds (the send time travels in the body).
- ``("stop", {})``.

Every phase is bounded: it stops sending at its deadline, then waits for what
is in flight for at most ``DRAIN_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import struct
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import msgspec
from nacl.signing import SigningKey
from websockets.asyncio.client import ClientConnection, connect

from tenchat.common import frames, identity
from tenchat.common.frames import (
    Ack,
    Auth,
    Authed,
    Deliver,
    Error,
    Hello,
    Ok,
    PrekeyStatus,
    PublishPrekeys,
    Reply,
    Send,
    SignedPrekey,
    Stored,
    Subscribe,
    Synced,
    Welcome,
)

__all__ = ["worker_main", "BODY_SIZE"]

BODY_SIZE = 200  # opaque body bytes per message (a short ciphertext)
ACK_INTERVAL = 0.005  # the recipient acks what it got every 5 ms (one Ack frame)
ACK_MAX = 4096  # seqs per Ack frame (the protocol's limit)
DRAIN_TIMEOUT = 30.0  # seconds to wait for in-flight messages after a phase
SETUP_TIMEOUT = 30.0
MAX_OUTSTANDING_PACED = 20_000  # per sender in a paced phase; beyond it sends are skipped

_TS = struct.Struct("<Q")
_STORED, _ACKED = 1, 2
_now = time.monotonic_ns


class BenchError(RuntimeError):
    pass


class Stats:
    """Counters shared by the pairs of one worker for the current phase."""

    def __init__(self) -> None:
        self.count_from = 0  # monotonic ns: durable completions in [count_from, count_to)
        self.count_to = 0
        self.window_completed = 0
        self.sample_from = -1  # latency samples of messages sent at or after this (-1: none)
        self.stored_ns: list[int] = []
        self.delivered_ns: list[int] = []
        self.errors: list[str] = []

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


class Link:
    """One authenticated connection; every decoded frame goes to ``handler``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self.handler: Callable[[Reply], None] = self._resolve
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def login(cls, url: str, key: SigningKey) -> Link:
        ws = await connect(url, max_size=None, compression=None, open_timeout=SETUP_TIMEOUT)
        link = cls(ws)
        welcome = await link.call(Hello(id=next(link.ids), versions=[frames.PROTOCOL_VERSION]))
        _expect(welcome, Welcome)
        assert isinstance(welcome, Welcome)
        origin = identity.relay_origin(url)
        sig = key.sign(identity.auth_message(origin, welcome.challenge)).signature
        _expect(await link.call(Auth(id=next(link.ids), user=bytes(key.verify_key), sig=sig,
                                     origin=origin)), Authed)  # fmt: skip
        return link

    async def call(self, frame: Any) -> Reply:
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[frame.id] = fut
        await self.ws.send(frames.encode(frame))
        return await asyncio.wait_for(fut, SETUP_TIMEOUT)

    def _resolve(self, frame: Reply) -> None:
        rid = getattr(frame, "id", None)
        fut = self._waiting.pop(rid, None) if rid is not None else None
        if fut is not None and not fut.done():
            fut.set_result(frame)

    async def _read(self) -> None:
        decode = frames.decode_reply
        async for data in self.ws:
            assert isinstance(data, bytes)
            self.handler(decode(data))

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


def _expect(frame: msgspec.Struct, kind: type) -> None:
    if not isinstance(frame, kind):
        raise BenchError(f"expected {kind.__name__}, got {frame!r}")


class Pair:
    """A sender connection and a recipient connection (each its own identity)."""

    def __init__(self, index: int, sender: Link, recipient: Link, to: bytes, stats: Stats) -> None:
        self.index = index
        self.sender = sender
        self.recipient = recipient
        self.to = to
        self.stats = stats
        self.state: dict[int, int] = {}  # seq -> _STORED | _ACKED bits seen so far
        self.sent_at: dict[int, int] = {}  # Send request id -> send time (ns)
        self.outstanding = 0  # Sends without an answer yet
        self.credit = asyncio.Event()
        self.msg_counter = itertools.count(1)
        self.pending_acks: list[int] = []
        self.acks_in_flight: dict[int, list[int]] = {}
        self.sent = 0
        self.completed = 0
        self.failed = 0
        self.pad = os.urandom(BODY_SIZE - _TS.size)
        self.msg_prefix = index.to_bytes(4, "big") + os.urandom(4)
        self.ack_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.sender.handler = self._on_sender_frame
        self.recipient.handler = self._on_recipient_frame
        self.ack_task = asyncio.create_task(self._ack_loop())

    # --- bookkeeping ----------------------------------------------------------------------

    def _mark(self, seq: int, bit: int) -> None:
        seen = self.state.get(seq, 0) | bit
        if seen == _STORED | _ACKED:
            del self.state[seq]
            self.completed += 1
            st = self.stats
            if st.count_from <= _now() < st.count_to:
                st.window_completed += 1
        else:
            self.state[seq] = seen

    def _on_sender_frame(self, frame: Reply) -> None:
        if type(frame) is Stored:
            t0 = self.sent_at.pop(frame.id, 0)
            if t0 and self.stats.sample_from >= 0 and t0 >= self.stats.sample_from:
                self.stats.stored_ns.append(_now() - t0)
            self._mark(frame.seq, _STORED)
        elif isinstance(frame, Error):
            self.sent_at.pop(frame.id or 0, None)
            self.failed += 1
            if len(self.stats.errors) < 20:
                self.stats.errors.append(f"send: {frame.error}: {frame.message}")
        else:
            return
        self.outstanding -= 1
        self.credit.set()

    def _on_recipient_frame(self, frame: Reply) -> None:
        if isinstance(frame, Deliver):
            st = self.stats
            if st.sample_from >= 0:
                t0 = _TS.unpack_from(frame.body)[0]
                if t0 >= st.sample_from:
                    st.delivered_ns.append(_now() - t0)
            self.pending_acks.append(frame.seq)
        elif isinstance(frame, Ok):
            for seq in self.acks_in_flight.pop(frame.id, ()):
                self._mark(seq, _ACKED)
        elif isinstance(frame, Error) and len(self.stats.errors) < 20:
            self.stats.errors.append(f"recipient: {frame.error}: {frame.message}")
        # Synced and other pushes need nothing.

    async def _ack_loop(self) -> None:
        ws = self.recipient.ws
        ids = self.recipient.ids
        while True:
            await asyncio.sleep(ACK_INTERVAL)
            while self.pending_acks:
                seqs = self.pending_acks[:ACK_MAX]
                del self.pending_acks[:ACK_MAX]
                rid = next(ids)
                self.acks_in_flight[rid] = seqs
                await ws.send(frames.encode(Ack(id=rid, seqs=seqs)))

    @property
    def settled(self) -> bool:
        return self.completed + self.failed >= self.sent

    # --- sending ----------------------------------------------------------------------------

    async def _send_one(self) -> None:
        rid = next(self.sender.ids)
        mid = self.msg_prefix + next(self.msg_counter).to_bytes(8, "big")
        t0 = _now()
        self.sent_at[rid] = t0
        self.outstanding += 1
        self.sent += 1
        data = frames.encode(Send(id=rid, to=self.to, msg=mid, body=_TS.pack(t0) + self.pad))
        await self.sender.ws.send(data)

    async def run_window(self, window: int, stop_at: int) -> None:
        """Keep ``window`` Sends outstanding until ``stop_at``."""
        while _now() < stop_at:
            while self.outstanding >= window:
                self.credit.clear()
                await self.credit.wait()
            await self._send_one()

    async def run_paced(self, first_at: int, interval: int, stop_at: int) -> int:
        """Send one message every ``interval`` ns from ``first_at`` to ``stop_at``; the
        number skipped because too many were outstanding."""
        skipped = 0
        for k in itertools.count():
            due = first_at + k * interval
            if due >= stop_at:
                break
            now = _now()
            if due > now:
                await asyncio.sleep((due - now) / 1e9)
            if self.outstanding >= MAX_OUTSTANDING_PACED:
                skipped += 1
                continue
            await self._send_one()
        return skipped


# --- the worker process ----------------------------------------------------------------------


async def _setup(urls: list[str], indices: list[int], stats: Stats) -> list[Pair]:
    """Pair ``index``'s recipient on ``urls[index % n]`` and its sender on the next URL:
    with several relay nodes every message crosses from one node to another."""

    async def one(index: int) -> Pair:
        rkey, skey = SigningKey.generate(), SigningKey.generate()
        recipient = await Link.login(urls[index % len(urls)], rkey)
        # A recipient exists for the relay once it holds a handle or a signed prekey.
        pub = os.urandom(32)
        spk = SignedPrekey(
            key_id=1, pub=pub, sig=rkey.sign(identity.signed_prekey_message(pub)).signature
        )
        status = await recipient.call(
            PublishPrekeys(id=next(recipient.ids), user=bytes(rkey.verify_key), spk=spk)
        )
        _expect(status, PrekeyStatus)
        # Subscribe: Ok, then Synced (the queue is empty) — then live pushes.
        synced: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        resolve = recipient.handler

        def on_frame(frame: Reply) -> None:
            if isinstance(frame, Synced) and not synced.done():
                synced.set_result(None)
            else:
                resolve(frame)

        recipient.handler = on_frame
        _expect(await recipient.call(Subscribe(id=next(recipient.ids))), Ok)
        await asyncio.wait_for(synced, SETUP_TIMEOUT)
        sender = await Link.login(urls[(index + 1) % len(urls)], skey)
        pair = Pair(index, sender, recipient, bytes(rkey.verify_key), stats)
        pair.start()
        return pair

    return list(await asyncio.gather(*(one(i) for i in indices)))


async def _drain(pairs: list[Pair]) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        if all(p.settled for p in pairs):
            return True
        await asyncio.sleep(0.01)
    return False


async def _cpu_window(start_ns: int, stop_ns: int) -> float:
    """This process's CPU seconds between two monotonic instants."""
    await asyncio.sleep(max(0, start_ns - _now()) / 1e9)
    a = time.process_time()
    await asyncio.sleep(max(0, stop_ns - _now()) / 1e9)
    return time.process_time() - a


def _totals(pairs: list[Pair]) -> dict[str, int]:
    return {
        "sent": sum(p.sent for p in pairs),
        "completed": sum(p.completed for p in pairs),
        "failed": sum(p.failed for p in pairs),
    }


async def _throughput(pairs: list[Pair], stats: Stats, cmd: dict[str, Any]) -> dict[str, Any]:
    stats.reset()
    before = _totals(pairs)
    start = cmd["start_at_ns"]
    stats.count_from = start + cmd["warmup_ns"]
    stats.count_to = stats.count_from + cmd["duration_ns"]
    cpu = asyncio.create_task(_cpu_window(stats.count_from, stats.count_to))
    await asyncio.sleep(max(0, start - _now()) / 1e9)
    await asyncio.gather(*(p.run_window(cmd["window"], stats.count_to) for p in pairs))
    cpu_s = await cpu
    drained = await _drain(pairs)
    after = _totals(pairs)
    return {
        "window_completed": stats.window_completed,
        **{k: after[k] - before[k] for k in after},
        "drained": drained,
        "cpu_s": cpu_s,
        "errors": stats.errors,
    }


async def _latency(pairs: list[Pair], stats: Stats, cmd: dict[str, Any]) -> dict[str, Any]:
    stats.reset()
    before = _totals(pairs)
    start = cmd["start_at_ns"]
    stats.sample_from = start + cmd["warmup_ns"]
    stop = stats.sample_from + cmd["duration_ns"]
    interval = cmd["interval_ns"]  # per sender
    cpu = asyncio.create_task(_cpu_window(stats.sample_from, stop))
    # Spread the senders' schedules evenly over one interval.
    offsets = [(p.index * interval) // cmd["pairs_total"] for p in pairs]
    skipped = await asyncio.gather(
        *(p.run_paced(start + off, interval, stop) for p, off in zip(pairs, offsets, strict=True))
    )
    cpu_s = await cpu
    drained = await _drain(pairs)
    after = _totals(pairs)
    return {
        **{k: after[k] - before[k] for k in after},
        "skipped": sum(skipped),
        "drained": drained,
        "cpu_s": cpu_s,
        "stored_ns": stats.stored_ns,
        "delivered_ns": stats.delivered_ns,
        "errors": stats.errors,
    }


async def _serve(pipe: Connection, url: str | list[str], indices: list[int]) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    pairs = await _setup([url] if isinstance(url, str) else url, indices, stats)
    pipe.send(("ready", {"pairs": len(pairs)}))
    try:
        while True:
            kind, cmd = await loop.run_in_executor(None, pipe.recv)
            if kind == "stop":
                break
            phase = _throughput if kind == "throughput" else _latency
            result = await asyncio.wait_for(
                phase(pairs, stats, cmd), cmd["bound_s"] + DRAIN_TIMEOUT + 10
            )
            pipe.send(("result", result))
    finally:
        for p in pairs:
            if p.ack_task is not None:
                p.ack_task.cancel()
        await asyncio.gather(
            *(link.close() for p in pairs for link in (p.sender, p.recipient)),
            return_exceptions=True,
        )


def worker_main(pipe: Connection, url: str | list[str], indices: list[int],
                use_uvloop: bool) -> None:
    """Process entry point (must stay importable for the spawn start method). ``url``: the
    relay, or several nodes of one relay (see :func:`_setup`)."""
    try:
        coro = _serve(pipe, url, indices)
        if use_uvloop:
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)
    except BaseException as exc:  # report to the parent, which owns the error message
        pipe.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        raise SystemExit(1) from None
    finally:
        pipe.close()
