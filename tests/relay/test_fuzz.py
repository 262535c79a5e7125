"""Hypothesis fuzzing of the frame decoder and of every relay handler over a real
connection: random, type-shaped and mutated frames. The relay never crashes, every frame
it sends decodes as a reply and every error carries a documented code other than
`internal`, bystanders' connections keep working, and the relay's memory stays bounded.

A short run is part of the suite; a long one: `python -m tests.fuzz --minutes 10`
(sets TENCHAT_FUZZ_SECONDS and TENCHAT_FUZZ_EXAMPLES)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection

from tenchat.common import frames
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Error, HandleInfo, Request, Whois
from tenchat.relay.handlers import HANDLERS
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, assert_alive, new_key

SECONDS = float(os.environ.get("TENCHAT_FUZZ_SECONDS", "0"))  # long runs: loop this long
EXAMPLES = int(os.environ.get("TENCHAT_FUZZ_EXAMPLES", "6"))  # per frame type per round
MAX_RSS_GROWTH = 64 * 1024 * 1024
MSGPACK_INTS = st.integers(-(2**63), 2**64 - 1)
CODES = {c.value for c in ErrorCode} - {ErrorCode.INTERNAL.value}
REQUESTS: list[type[msgspec.Struct]] = list(Request.__args__)  # type: ignore[attr-defined]
fuzz_settings = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))


# --- strategies: values shaped like each frame's fields, sometimes out of bounds --------------


def shaped(t: msgspec.inspect.Type, depth: int = 0) -> st.SearchStrategy[Any]:
    mi = msgspec.inspect
    wild = st.one_of(st.none(), st.booleans(), MSGPACK_INTS, st.text(max_size=8),
                     st.binary(max_size=8))
    if isinstance(t, mi.IntType):
        lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -(2**63))
        hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 2**64 - 1)
        edges = [v for v in (lo, hi, lo - 1, hi + 1, 0, 1) if -(2**63) <= v < 2**64]
        return st.one_of(st.integers(lo, hi), st.sampled_from(edges))
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.BytesType):
        lo, hi = t.min_length or 0, min(t.max_length or 96, 2048)
        sizes = st.sampled_from(sorted({lo, hi, max(lo - 1, 0), hi + 1}))
        return st.one_of(st.binary(min_size=lo, max_size=hi),
                         sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n)))
    if isinstance(t, mi.StrType):
        return st.text(min_size=t.min_length or 0, max_size=min(t.max_length or 40, 300))
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        if depth > 2:
            return st.just([])
        return st.lists(shaped(t.item_type, depth + 1), max_size=4)
    if isinstance(t, mi.DictType):
        return st.dictionaries(shaped(t.key_type, depth + 1), shaped(t.value_type, depth + 1),
                               max_size=3)
    if isinstance(t, mi.StructType):
        return struct_dict(t, depth + 1)
    if isinstance(t, mi.UnionType):
        return st.one_of([shaped(x, depth + 1) for x in t.types])
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(list(t.values))
    return wild


def struct_dict(t: msgspec.inspect.StructType, depth: int = 0) -> st.SearchStrategy[dict]:
    required = {f.encode_name: shaped(f.type, depth) for f in t.fields if f.required}
    optional = {f.encode_name: shaped(f.type, depth) for f in t.fields if not f.required}
    base = st.fixed_dictionaries(required, optional=optional)
    if t.tag is not None:
        base = base.map(lambda d: {**d, t.tag_field: t.tag})
    return base


def frame_dicts(cls: type[msgspec.Struct]) -> st.SearchStrategy[dict]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    # Now and then drop or retype a field, or add an unknown one.
    def damage(d: dict, how: int, key: str) -> dict:
        d = dict(d)
        keys = [k for k in d if k not in ("t", "id")]
        if how == 1 and keys:
            d.pop(keys[len(key) % len(keys)])
        elif how == 2 and keys:
            d[keys[len(key) % len(keys)]] = key
        elif how == 3:
            d[key or "x"] = 1
        return d

    return st.builds(damage, struct_dict(info), st.sampled_from([0, 0, 0, 1, 2, 3]),
                     st.text(max_size=6))


def mutate(data: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, val in ops:
        if not buf:
            break
        i = pos % len(buf)
        if kind == 0:
            buf[i] = val
        elif kind == 1:
            del buf[i:]
        elif kind == 2:
            buf.insert(i, val)
        else:
            del buf[i]
    return bytes(buf)


mutations = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**16), st.integers(0, 255)),
                     min_size=1, max_size=4)
any_frame_bytes = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda d, m: mutate(msgspec.msgpack.encode(d), m),
              st.sampled_from(REQUESTS).flatmap(frame_dicts), mutations),
    st.dictionaries(st.text(max_size=5), MSGPACK_INTS | st.binary(max_size=40) | st.text(),
                    max_size=4).map(msgspec.msgpack.encode),
)


# --- the pure decoder -------------------------------------------------------------------------


@settings(max_examples=max(300, EXAMPLES * 50), deadline=None, database=None)
@given(any_frame_bytes)
def test_decoder_raises_only_protocol_errors(data: bytes) -> None:
    try:
        frame = frames.decode_request(data)
    except ProtocolError as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.UNKNOWN_TYPE), exc
    else:
        assert frames.decode_request(frames.encode(frame)) == frame


@settings(max_examples=max(100, EXAMPLES * 20), deadline=None, database=None)
@given(st.sampled_from(REQUESTS).flatmap(frame_dicts))
def test_decoder_on_shaped_frames(d: dict) -> None:
    data = msgspec.msgpack.encode(d)
    try:
        frame = frames.decode_request(data)
    except ProtocolError as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.UNKNOWN_TYPE), exc
    else:
        assert type(frame).__struct_config__.tag == d["t"]


# --- the relay, over a real connection --------------------------------------------------------


class Fuzzer:
    """One logged-in connection sending fuzz, and two bystanders that must not notice."""

    def __init__(self, relay: RelayProcess) -> None:
        self.relay = relay
        self.loop = asyncio.new_event_loop()
        self.ids = itertools.count(10**6)
        self.seen: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.client, self.a, self.b = self.run(self._login())
        self.ws: ClientConnection = self.client.ws

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 60))

    async def _login(self) -> tuple[RelayClient, RelayClient, RelayClient]:
        clients = [await RelayClient.login(self.relay.url, new_key()) for _ in range(3)]
        for c in clients:
            await c.publish()
        clients[0]._reader.cancel()  # this test reads the fuzzed connection itself
        return clients[0], clients[1], clients[2]

    def check(self, data: bytes | str) -> msgspec.Struct:
        assert isinstance(data, bytes), "the relay sent a text frame"
        reply = frames.decode_reply(data)  # every frame the relay sends is a valid reply
        if isinstance(reply, Error):
            assert reply.error in CODES, f"undocumented or internal error: {reply}"
            self.errors[reply.error] = self.errors.get(reply.error, 0) + 1
        return reply

    async def send(self, data: bytes, tag: str = "?") -> None:
        self.seen[tag] = self.seen.get(tag, 0) + 1
        await self.ws.send(data)
        # A read request after it: once its answer is in, the fuzz frame was handled
        # (writes may answer later; those frames are checked on the next rounds).
        ping = next(self.ids)
        await self.ws.send(frames.encode(Whois(id=ping, user=self.a.user)))
        while True:
            reply = self.check(await asyncio.wait_for(self.ws.recv(), 10))
            if getattr(reply, "id", None) == ping:
                assert isinstance(reply, (HandleInfo, Error)), reply
                return

    def rss(self) -> int:
        assert self.relay.proc is not None
        status = Path(f"/proc/{self.relay.proc.pid}/status").read_text()
        line = next(ln for ln in status.splitlines() if ln.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024

    def close(self) -> None:
        async def done() -> None:
            # Whatever is still in flight must be valid too.
            with_timeout = asyncio.wait_for
            try:
                while True:
                    self.check(await with_timeout(self.ws.recv(), 0.5))
            except TimeoutError:
                pass
            for c in (self.client, self.a, self.b):
                await c.close()

        self.run(done())
        self.loop.close()


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    relay = RelayProcess(tmp_path_factory.mktemp("fuzz") / "data",
                         args=["--max-frame", "65536", "--blob-quota", "1048576"])
    with relay:
        f = Fuzzer(relay)
        try:
            yield f
        finally:
            f.close()
        assert relay.running, "the relay died"
    assert "Traceback" not in relay.log_tail(1_000_000)


def test_every_handler_has_a_request_type() -> None:
    assert set(HANDLERS) <= set(REQUESTS)


@pytest.mark.slow
@pytest.mark.parametrize("cls", REQUESTS, ids=lambda c: c.__struct_config__.tag)
def test_relay_handler_fuzz(fuzzer: Fuzzer, cls: type[msgspec.Struct]) -> None:
    tag = cls.__struct_config__.tag  # type: ignore[attr-defined]

    @fuzz_settings
    @given(frame_dicts(cls))
    def one(d: dict) -> None:
        d = {**d, "id": next(fuzzer.ids)} if "id" in d else d
        fuzzer.run(fuzzer.send(msgspec.msgpack.encode(d), tag))

    one()
    assert fuzzer.seen.get(tag, 0) >= 1
    fuzzer.run(assert_alive(fuzzer.a, fuzzer.b))


@pytest.mark.slow
def test_relay_mixed_fuzz_and_memory(fuzzer: Fuzzer) -> None:
    @settings(max_examples=max(150, EXAMPLES * 25), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(any_frame_bytes)
    def round_(data: bytes) -> None:
        fuzzer.run(fuzzer.send(data))

    round_()  # warm up (caches, first allocations)
    before = fuzzer.rss()
    deadline = time.monotonic() + SECONDS
    rounds = 0
    while True:
        round_()
        rounds += 1
        fuzzer.run(assert_alive(fuzzer.a, fuzzer.b))
        if time.monotonic() >= deadline:
            break
    growth = fuzzer.rss() - before
    assert growth < MAX_RSS_GROWTH, f"relay RSS grew {growth >> 20} MiB in {rounds} rounds"
    assert "malformed" in fuzzer.errors  # the fuzz reached the relay's checks
