"""Abuse limits over a real relay process: rate limits per connection and per identity,
the per-address connection cap, queue_max, the authentication timeout, slow consumers
and replayed authentication. Each limit triggers, and the relay recovers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tenchat.common import frames, identity
from tenchat.common.frames import (
    Ack,
    Auth,
    Authed,
    Deliver,
    Error,
    Fetch,
    Hello,
    Messages,
    Send,
    Stored,
    Subscribe,
    Welcome,
    Whois,
)
from tenchat.relay.limits import AddressCounter, TokenBucket, UserBuckets
from tests.support.relay import RelayProcess
from tests.support.wsclient import (
    RelayClient,
    assert_alive,
    async_test,
    logged_in,
    msg_id,
    new_key,
    user_of,
)


def err(reply: msgspec.Struct, code: str) -> Error:
    assert isinstance(reply, Error), reply
    assert reply.error == code, reply
    return reply


def start(tmp_path: Path, *args: str) -> Iterator[RelayProcess]:
    with RelayProcess(tmp_path / "data", args=list(args)) as proc:
        yield proc


# --- the buckets themselves (a clock we move) --------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_limits_and_refills() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # one token comes in 1/rate s
    clock.now += 0.5
    assert bucket.take() == 0.0
    clock.now += 100  # never more than burst
    assert [bucket.take() for _ in range(4)][-1] > 0


def test_user_buckets_forget_full_buckets() -> None:
    clock = Clock()
    buckets = UserBuckets(rate=10, burst=1, clock=clock)
    buckets._prune_at = 4
    for i in range(4):
        assert buckets.take(bytes([i])) == 0.0
    clock.now += 1  # all full again: pruned when the next identity comes
    assert buckets.take(b"new") == 0.0
    assert len(buckets) == 1


def test_address_counter_caps() -> None:
    counter = AddressCounter(cap=2, exempt=["127.0.0.1"])
    assert counter.add("a") and counter.add("a") and not counter.add("a")
    assert counter.add("b")
    counter.remove("a")
    assert counter.add("a") and counter.count("a") == 2
    assert all(counter.add("127.0.0.1") for _ in range(5))  # exempt


# --- rate limits over the wire -----------------------------------------------------------------


@pytest.fixture
def rate_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    yield from start(tmp_path, "--rate-conn", "4", "--burst-conn", "8",
                     "--rate-user", "6", "--burst-user", "12")


async def until_served(c: RelayClient, key) -> object:  # type: ignore[no-untyped-def]
    """Whois until the relay answers it rather than rate_limited (tokens come back with
    time: wait for that, not for a fixed sleep)."""
    deadline = time.monotonic() + 15
    while True:
        reply = await c.call(Whois, user=user_of(key))
        if not (isinstance(reply, Error) and reply.error == "rate_limited"):
            return reply
        assert time.monotonic() < deadline, "still rate limited"
        await asyncio.sleep(max(reply.retry_after, 10) / 1000)


@pytest.mark.slow
@async_test
async def test_connection_rate_limit_answers_and_recovers(rate_relay: RelayProcess) -> None:
    key = new_key()
    c = await RelayClient.login(rate_relay.url, key)  # hello + auth: 2 of the 8 tokens
    async with c:
        replies = [await c.call(Whois, user=user_of(key)) for _ in range(8)]
        limited = [r for r in replies if isinstance(r, Error) and r.error == "rate_limited"]
        assert limited, replies
        error = err(limited[0], "rate_limited")
        assert error.id is not None and 0 < error.retry_after <= 1000, error
        # The connection keeps serving: after retry_after the next frame is answered.
        await asyncio.sleep(error.retry_after / 1000)
        answer = await until_served(c, key)
        assert isinstance(answer, Error) and answer.error == "not_found", answer


@pytest.mark.slow
@async_test
async def test_identity_rate_limit_spans_connections(rate_relay: RelayProcess) -> None:
    key = new_key()
    c1 = await RelayClient.login(rate_relay.url, key)
    c2 = await RelayClient.login(rate_relay.url, key)
    other = await RelayClient.login(rate_relay.url, new_key())
    async with c1, c2, other:
        # 12 identity tokens, shared: each connection alone stays within its own 8.
        replies = []
        for _ in range(7):
            replies.append(await c1.call(Whois, user=user_of(key)))
            replies.append(await c2.call(Whois, user=user_of(key)))
        codes = [r.error for r in replies if isinstance(r, Error)]
        assert "rate_limited" in codes, codes
        # Another identity is not affected.
        err(await other.call(Whois, user=user_of(key)), "not_found")
        err(await until_served(c2, key), "not_found")  # tokens come back: served again


@pytest.mark.slow
@async_test
async def test_client_core_waits_and_sends_again(tmp_path: Path) -> None:
    from tenchat.client.connection import RateLimited, RelayConnection, RelayError

    with RelayProcess(tmp_path / "data", args=["--rate-conn", "5", "--burst-conn", "3"]) as relay:
        key = new_key()
        conn = RelayConnection(relay.url, user=user_of(key),
                               sign=lambda m: key.sign(m).signature)
        await conn.open()  # hello + auth: 2 of the 3 tokens
        try:
            answers = []
            limited: list[float] = []  # the relay's retry_after of each frame turned down
            once = conn._request_once

            async def counted(kind, fields):  # type: ignore[no-untyped-def]
                try:
                    return await once(kind, fields)
                except RateLimited as exc:
                    limited.append(exc.retry_after)
                    raise

            conn._request_once = counted  # type: ignore[method-assign]
            for _ in range(6):  # faster than 5/s: some are turned down, then sent again
                with pytest.raises(RelayError) as refused:
                    await conn.request(Whois, user=user_of(key))
                answers.append(refused.value.code)
            # Every one answered in the end, though the relay turned some down first (no
            # wall-clock bound: the count of refusals is what shows the waiting).
            assert answers == ["not_found"] * 6
            assert limited and all(0 < wait <= 1 for wait in limited), limited
        finally:
            await conn.close()


# --- connections per address --------------------------------------------------------------------


@pytest.fixture
def capped_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    yield from start(tmp_path, "--ip-conn-max", "3", "--ip-conn-exempt", "")


@pytest.mark.slow
@async_test
async def test_connections_per_address_capped(capped_relay: RelayProcess) -> None:
    url = capped_relay.url
    clients = [await RelayClient.login(url, new_key()) for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        await RelayClient.connect(url)
    assert refused.value.response.status_code == 503
    assert b"too many connections" in refused.value.response.body
    for c in clients[1:]:
        assert isinstance(await c.call(Whois, user=c.user), Error)  # still served
    await clients[0].close()
    # A freed slot is usable (once the relay has seen the close: retried, not slept on).
    deadline = time.monotonic() + 15
    while True:
        try:
            again = await RelayClient.login(url, new_key())
            break
        except InvalidStatus:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    await again.close()
    for c in clients[1:]:
        await c.close()


# --- queue length -------------------------------------------------------------------------------


@pytest.mark.slow
@async_test
async def test_queue_max_refuses_then_recovers(tmp_path: Path) -> None:
    # one sender fills the queue here: no per-sender share (tested in test_relay_trust)
    with RelayProcess(tmp_path / "data", args=["--queue-max", "3"],
                      env={"TENCHAT_RELAY_QUEUE_SHARE": "100"}) as relay:
        async with logged_in(relay.url) as (alice, bob):
            ids = [msg_id() for _ in range(3)]
            stored = [await alice.call(Send, to=bob.user, msg=ids[i], body=b"%d" % i)
                      for i in range(3)]
            assert all(isinstance(s, Stored) for s in stored), stored
            full = err(await alice.call(Send, to=bob.user, msg=msg_id(), body=b"x"),
                       "queue_full")
            assert "3 messages" in full.message
            # A retry of an already-stored message still gets its original answer.
            retry = await alice.call(Send, to=bob.user, msg=ids[0], body=b"0")
            first = stored[0]
            assert isinstance(retry, Stored) and isinstance(first, Stored)
            assert retry.seq == first.seq
            page = await bob.call(Fetch, user=bob.user)
            assert isinstance(page, Messages) and len(page.items) == 3
            assert isinstance(await bob.call(Ack, seqs=[page.items[0].seq]), frames.Ok)
            assert isinstance(await alice.call(Send, to=bob.user, msg=msg_id(), body=b"y"),
                              Stored)
            err(await alice.call(Send, to=bob.user, msg=msg_id(), body=b"z"), "queue_full")
            await assert_alive(bob, alice)  # other queues are not affected


@pytest.mark.slow
@async_test
async def test_queue_bytes_refuses_then_recovers(tmp_path: Path) -> None:
    with RelayProcess(tmp_path / "data", args=["--queue-bytes", "2500"],
                      env={"TENCHAT_RELAY_QUEUE_SHARE": "100"}) as relay:
        async with logged_in(relay.url) as (alice, bob):
            for _ in range(2):
                assert isinstance(await alice.call(Send, to=bob.user, msg=msg_id(),
                                                   body=bytes(1000)), Stored)
            err(await alice.call(Send, to=bob.user, msg=msg_id(), body=bytes(1000)),
                "queue_full")
            # A smaller message still fits.
            assert isinstance(await alice.call(Send, to=bob.user, msg=msg_id(),
                                               body=bytes(400)), Stored)
            page = await bob.call(Fetch, user=bob.user)
            assert isinstance(page, Messages) and len(page.items) == 3
            assert isinstance(await bob.call(Ack, seqs=[page.items[0].seq]), frames.Ok)
            assert isinstance(await alice.call(Send, to=bob.user, msg=msg_id(),
                                               body=bytes(1000)), Stored)


# --- authentication timeout ---------------------------------------------------------------------


@pytest.mark.slow
@async_test
async def test_unauthenticated_connection_is_closed(tmp_path: Path) -> None:
    with RelayProcess(tmp_path / "data", args=["--auth-timeout", "1"]) as relay:
        lazy = await RelayClient.connect(relay.url)
        assert isinstance(await lazy.hello(), Welcome)
        authed = await RelayClient.login(relay.url, new_key())
        await asyncio.wait_for(lazy.ws.wait_closed(), 15)
        assert lazy.ws.close_code == 1008 and "authentication" in lazy.ws.close_reason
        # An authenticated connection outlives the timeout. No fixed sleep: a second lazy
        # connection, opened after `authed`, is closed after authed's deadline has passed.
        later = await RelayClient.connect(relay.url)
        await asyncio.wait_for(later.ws.wait_closed(), 15)
        assert later.ws.close_code == 1008
        assert isinstance(await authed.call(Whois, user=authed.user), Error)
        await authed.close()


# --- slow consumers -----------------------------------------------------------------------------


class RawClient:
    """A WebSocket client on a plain socket with a tiny receive buffer, that stops reading
    whenever the test wants (websockets' sans-I/O protocol does the framing)."""

    def __init__(self, url: str) -> None:
        self.proto = ClientProtocol(parse_uri(url), max_size=None)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        self.proto.send_request(self.proto.connect())
        self._flush()
        self.frames: list[frames.Reply] = []
        while not any(isinstance(e, Response) for e in self._read()):
            pass

    def _flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read(self) -> list[object]:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the relay")
        self.proto.receive_data(data)
        self._flush()
        events = self.proto.events_received()
        for event in events:
            if isinstance(event, Frame) and event.opcode is Opcode.BINARY:
                self.frames.append(frames.decode_reply(event.data))
        return events

    def request(self, frame: msgspec.Struct) -> frames.Reply:
        self.proto.send_binary(frames.encode(frame))
        self._flush()
        rid = frame.id  # type: ignore[attr-defined]
        while True:
            for f in self.frames:
                if getattr(f, "id", None) == rid:
                    self.frames.remove(f)
                    return f
            self._read()

    def read_until_closed(self) -> int:
        """Read what the relay still sends; the number of deliveries, once it cut us."""
        while True:
            try:
                self._read()
            except (ConnectionError, OSError):
                return sum(isinstance(f, Deliver) for f in self.frames)


@pytest.mark.slow
@async_test
async def test_slow_consumer_is_cut_and_its_queue_waits(tmp_path: Path) -> None:
    with RelayProcess(tmp_path / "data",
                      args=["--send-timeout", "2", "--write-limit", "16384"]) as relay:
        bob_key = new_key()
        async with logged_in(relay.url, 1) as (alice,), logged_in(relay.url, 0) as ():
            bob = await RelayClient.login(relay.url, bob_key)
            await bob.publish()
            await bob.close()

            def bob_subscribes() -> RawClient:
                raw = RawClient(relay.url)
                welcome = raw.request(Hello(id=1, versions=[frames.PROTOCOL_VERSION]))
                assert isinstance(welcome, Welcome)
                origin = identity.relay_origin(relay.url)
                sig = bob_key.sign(identity.auth_message(origin, welcome.challenge))
                assert isinstance(raw.request(Auth(id=2, user=user_of(bob_key),
                                                   sig=sig.signature, origin=origin)), Authed)
                raw.proto.send_binary(frames.encode(Subscribe(id=3)))
                raw._flush()
                return raw

            raw = await asyncio.to_thread(bob_subscribes)  # and now bob stops reading
            body = bytes(60_000)
            n = 150  # 9 MB: far more than the socket buffers hold
            sent = set()
            for _ in range(n):
                reply = await alice.call(Send, to=user_of(bob_key), msg=msg_id(), body=body)
                assert isinstance(reply, Stored), reply
                sent.add(reply.seq)
            # Wait for the event (the relay cutting bob off: send_timeout 2 s, checked every
            # second) rather than a fixed sleep; bob reads only after it.
            deadline = time.monotonic() + 30
            while "stopped reading" not in relay.log_tail(20000):
                assert time.monotonic() < deadline, "the relay never cut the reader"
                await asyncio.sleep(0.1)
            got = await asyncio.to_thread(raw.read_until_closed)
            assert got < n, "the relay should have cut the reader, not buffered everything"
            assert "stopped reading" in relay.log_tail(20000)
            # Nothing was acked: all of it waits in the database for bob's next connection.
            again = await RelayClient.login(relay.url, bob_key)
            async with again:
                seqs: list[int] = []
                while True:
                    page = await again.call(Fetch, user=again.user, after=max(seqs, default=0))
                    assert isinstance(page, Messages)
                    if not page.items:
                        break
                    seqs += [m.seq for m in page.items]
                assert set(seqs) == sent
            stored = await alice.call(Send, to=alice.user, msg=msg_id(), body=b"ok")
            assert isinstance(stored, Stored)  # the relay serves on


# --- replayed authentication --------------------------------------------------------------------


@pytest.mark.slow
@async_test
async def test_replayed_auth_is_refused(tmp_path: Path) -> None:
    with RelayProcess(tmp_path / "data") as relay:
        key = new_key()
        first = await RelayClient.connect(relay.url)
        welcome = await first.hello()
        assert isinstance(welcome, Welcome)
        origin = identity.relay_origin(relay.url)
        sig = key.sign(identity.auth_message(origin, welcome.challenge)).signature
        recorded = Auth(id=50, user=user_of(key), sig=sig, origin=origin)
        assert isinstance(await first.request(recorded), Authed)
        # The same frame again on its connection: the challenge is spent.
        err(await first.request(Auth(id=51, user=recorded.user, sig=recorded.sig,
                                     origin=origin)), "protocol")
        await first.close()
        # On a new connection it is over another challenge, so it does not verify.
        second = await RelayClient.connect(relay.url)
        async with second:
            assert isinstance(await second.hello(), Welcome)
            err(await second.request(recorded), "auth_failed")
            err(await second.call(Whois, user=user_of(key)), "unauthenticated")
        with pytest.raises(ConnectionClosed):
            await first.call(Hello, versions=[1])
