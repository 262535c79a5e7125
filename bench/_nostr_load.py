"""The nostr load generator: run by ``bench.nostr_compare`` with the nostr virtual
environment's python (``websockets`` and ``aionostr``/``coincurve`` come from there; this
file imports nothing of tenchat). One JSON object a line on stdin (commands) and on
stdout (answers):

- ``{"cmd": "setup", "url": U, "indices": [...]}`` → ``{"ready": n}``: per index a
  sender and a recipient connection, each with its own secp256k1 key; the recipient
  sends ``REQ`` with a filter ``{"kinds": [4], "#p": [its pubkey], "since": now}`` and
  waits for ``EOSE``.
- ``{"cmd": "throughput", ...}``: every sender keeps ``window`` EVENTs outstanding (no
  ``OK`` yet) until the deadline; an event is *durable* once its ``OK`` true reached
  the sender AND it was delivered to the recipient's subscription.
- ``{"cmd": "latency", ...}``: paced EVENTs; publish → OK and publish → delivered (ns).
- ``{"cmd": "stop"}``.

Events are kind 4 with a ``p`` tag and ~200 characters of content, their id the
SHA-256 of the NIP-01 serialisation and their signature BIP-340 Schnorr over
secp256k1 (coincurve, as aionostr signs).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
import sys
import time
import traceback
from typing import Any

from aionostr.key import PrivateKey
from websockets.asyncio.client import connect

CONTENT_CHARS = 200
DRAIN_TIMEOUT = 30.0
SETUP_TIMEOUT = 30.0
MAX_OUTSTANDING_PACED = 20_000
_STORED, _DELIVERED = 1, 2
_now = time.monotonic_ns
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class Stats:
    def __init__(self) -> None:
        self.count_from = 0
        self.count_to = 0
        self.window_completed = 0
        self.sample_from = -1
        self.stored_ns: list[int] = []
        self.delivered_ns: list[int] = []
        self.errors: list[str] = []


class Pair:
    def __init__(self, index: int, stats: Stats) -> None:
        self.index = index
        self.stats = stats
        self.skey, self.rkey = PrivateKey(), PrivateKey()
        self.spub = self.skey.public_key.hex()
        self.rpub = self.rkey.public_key.hex()
        self.coin = self.skey.raw_secret
        self.state: dict[str, list[int]] = {}  # event id -> [sent ns, bits]
        self.outstanding = 0
        self.credit = asyncio.Event()
        self.counter = itertools.count(1)
        self.pad = base64.b64encode(os.urandom(CONTENT_CHARS)).decode()[:CONTENT_CHARS - 24]
        self.sent = self.completed = self.failed = 0
        self.sub = f"r{index}"

    async def open(self, url: str) -> None:
        self.sender = await connect(url, max_size=None, compression=None,
                                    open_timeout=SETUP_TIMEOUT)
        self.recipient = await connect(url, max_size=None, compression=None,
                                       open_timeout=SETUP_TIMEOUT)
        await self.recipient.send(_dumps(["REQ", self.sub, {
            "kinds": [4], "#p": [self.rpub], "since": int(time.time()) - 5}]))
        async with asyncio.timeout(SETUP_TIMEOUT):
            async for raw in self.recipient:
                msg = json.loads(raw)
                if msg[0] == "EOSE":
                    break
        self.tasks = [asyncio.create_task(self._read_sender()),
                      asyncio.create_task(self._read_recipient())]

    def _mark(self, eid: str, bit: int, field: list[int] | None) -> None:
        entry = self.state.get(eid)
        if entry is None:
            return
        st = self.stats
        if st.sample_from >= 0 and entry[0] >= st.sample_from:
            (st.stored_ns if bit == _STORED else st.delivered_ns).append(_now() - entry[0])
        entry[1] |= bit
        if entry[1] == _STORED | _DELIVERED:
            del self.state[eid]
            self.completed += 1
            if st.count_from <= _now() < st.count_to:
                st.window_completed += 1

    async def _read_sender(self) -> None:
        async for raw in self.sender:
            msg = json.loads(raw)
            if msg[0] == "OK":
                self.outstanding -= 1
                self.credit.set()
                if msg[2]:
                    self._mark(msg[1], _STORED, None)
                else:
                    self.state.pop(msg[1], None)
                    self.failed += 1
                    if len(self.stats.errors) < 20:
                        self.stats.errors.append(f"OK false: {msg[3] if len(msg) > 3 else ''}")
            elif msg[0] == "NOTICE" and len(self.stats.errors) < 20:
                self.stats.errors.append(f"NOTICE: {msg[1]}")

    async def _read_recipient(self) -> None:
        async for raw in self.recipient:
            msg = json.loads(raw)
            if msg[0] == "EVENT":
                self._mark(msg[2]["id"], _DELIVERED, None)
            elif msg[0] in ("NOTICE", "CLOSED") and len(self.stats.errors) < 20:
                self.stats.errors.append(f"recipient {msg[0]}: {msg[1:]}")

    def _event(self) -> tuple[str, str]:
        created = int(time.time())
        tags = [["p", self.rpub]]
        content = f"{self.index:06d}{next(self.counter):012d}?iv={self.pad}"
        ser = _dumps([0, self.spub, created, 4, tags, content]).encode()
        digest = hashlib.sha256(ser).digest()
        sig = self.skey.sign_message_hash(digest)
        eid = digest.hex()
        return eid, _dumps(["EVENT", {"id": eid, "pubkey": self.spub, "created_at": created,
                                      "kind": 4, "tags": tags, "content": content,
                                      "sig": sig}])

    async def _send_one(self) -> None:
        eid, data = self._event()
        self.state[eid] = [_now(), 0]
        self.outstanding += 1
        self.sent += 1
        await self.sender.send(data)

    async def run_window(self, window: int, stop_at: int) -> None:
        while _now() < stop_at:
            while self.outstanding >= window:
                self.credit.clear()
                await self.credit.wait()
            await self._send_one()

    async def run_paced(self, first_at: int, interval: int, stop_at: int) -> int:
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

    @property
    def settled(self) -> bool:
        return self.completed + self.failed >= self.sent


async def _drain(pairs: list[Pair]) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        if all(p.settled for p in pairs):
            return True
        await asyncio.sleep(0.01)
    return False


def _totals(pairs: list[Pair]) -> dict[str, int]:
    return {"sent": sum(p.sent for p in pairs), "completed": sum(p.completed for p in pairs),
            "failed": sum(p.failed for p in pairs)}


async def _cpu_window(start_ns: int, stop_ns: int) -> float:
    await asyncio.sleep(max(0, start_ns - _now()) / 1e9)
    a = time.process_time()
    await asyncio.sleep(max(0, stop_ns - _now()) / 1e9)
    return time.process_time() - a


async def _phase(pairs: list[Pair], stats: Stats, cmd: dict[str, Any]) -> dict[str, Any]:
    stats.__init__()  # type: ignore[misc]
    before = _totals(pairs)
    start = cmd["start_at_ns"]
    begin = start + cmd["warmup_ns"]
    stop = begin + cmd["duration_ns"]
    cpu = asyncio.create_task(_cpu_window(begin, stop))
    skipped = 0
    if cmd["cmd"] == "throughput":
        stats.count_from, stats.count_to = begin, stop
        await asyncio.sleep(max(0, start - _now()) / 1e9)
        await asyncio.gather(*(p.run_window(cmd["window"], stop) for p in pairs))
    else:
        stats.sample_from = begin
        interval = cmd["interval_ns"]
        offsets = [(p.index * interval) // cmd["pairs_total"] for p in pairs]
        runs = [p.run_paced(start + off, interval, stop)
                for p, off in zip(pairs, offsets, strict=True)]
        skipped = sum(await asyncio.gather(*runs))
    cpu_s = await cpu
    drained = await _drain(pairs)
    after = _totals(pairs)
    return {"window_completed": stats.window_completed,
            **{k: after[k] - before[k] for k in after}, "skipped": skipped,
            "drained": drained, "cpu_s": cpu_s, "stored_ns": stats.stored_ns,
            "delivered_ns": stats.delivered_ns, "errors": stats.errors}


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main() -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    pairs: list[Pair] = []
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "stop":
                break
            if cmd["cmd"] == "setup":
                pairs = [Pair(i, stats) for i in cmd["indices"]]
                await asyncio.gather(*(p.open(cmd["url"]) for p in pairs))
                _reply({"ready": len(pairs)})
            else:
                _reply(await _phase(pairs, stats, cmd))
        except Exception as exc:
            _reply({"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"})
            break
    for p in pairs:
        for ws in (getattr(p, "sender", None), getattr(p, "recipient", None)):
            if ws is not None:
                await ws.close()


if __name__ == "__main__":
    asyncio.run(main())
