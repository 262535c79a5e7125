"""The relay in this process, with connections that are real but have no socket.

    async with InProcRelay(tmp_path, inflight_max=4) as relay:
        alice = await relay.login(new_key())           # hello + auth over a Peer
        reply = await alice.request(Send(id=alice.next_id(), to=..., msg=..., body=b"x"))
        alice.reading = False                           # a reader that stopped reading

The relay side is the production code end to end: :class:`~tenchat.relay.server.Server`
with its real SQLite store, hub, handlers and sessions, and each connection a real
:class:`~tenchat.relay.connection.RelayConnection` (websockets' own framing and flow
control). Only the socket is replaced: a :class:`MemoryTransport` hands what the relay
writes to the test's :class:`Peer` — at once while the peer is ``reading``, else it piles
up in the transport's buffer and pauses the connection's writes above ``write_limit``,
as a full kernel send buffer would. So ordering, backpressure and slow consumers can be
tested exactly and fast, without processes or ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self, TypeVar

import msgspec
from nacl.signing import SigningKey
from websockets.asyncio.connection import Connection
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from tenchat.common import frames, identity
from tenchat.common.frames import (
    Auth,
    Authed,
    Hello,
    PrekeyStatus,
    PublishPrekeys,
    SignedPrekey,
    Welcome,
)
from tenchat.relay.config import Config
from tenchat.relay.connection import RelayConnection
from tenchat.relay.server import Server

__all__ = ["InProcRelay", "Peer", "MemoryTransport", "StartRelay", "eventually"]

T = TypeVar("T")
TIMEOUT = 10.0
RELAY_NAME = "inproc-relay"


class MemoryTransport(asyncio.Transport):
    """The relay's end of a connection with no socket: bytes written go to the peer."""

    def __init__(self, peer: Peer, port: int) -> None:
        super().__init__()
        self.peer = peer
        self.buffer = bytearray()  # written by the relay, not read by the peer yet
        self.high = 64 * 1024
        self.low = 16 * 1024
        self.writes = 0  # transport.write calls (one per socket write in production)
        self.reading_paused = False  # the relay stopped reading from us (backpressure)
        self.aborted = False
        self._closing = False
        self._protocol_paused = False
        self._extra = {"peername": ("127.0.0.1", port), "sockname": ("127.0.0.1", 1)}

    # --- asyncio.Transport, as the relay's connection uses it -----------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high = 64 * 1024 if high is None else high
        self.low = self.high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return len(self.buffer)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        self.writes += 1
        self.buffer += data
        if self.peer.reading:
            self.deliver()
        elif len(self.buffer) > self.high and not self._protocol_paused:
            self._protocol_paused = True
            self.peer.conn.pause_writing()

    def deliver(self) -> None:
        """The peer reads everything buffered (and the relay may write again)."""
        data, self.buffer = bytes(self.buffer), bytearray()
        if data:
            self.peer._received_bytes(data)
        if self._protocol_paused and len(self.buffer) <= self.low:
            self._protocol_paused = False
            self.peer.conn.resume_writing()

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:  # pragma: no cover - can_write_eof is False
        pass

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def is_reading(self) -> bool:
        return not self.reading_paused

    def close(self) -> None:
        self._lose()

    def abort(self) -> None:
        self.aborted = True
        self._lose()

    def _lose(self) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self.peer.conn.connection_lost, None)
            self.peer._lost()


class Peer:
    """A client connected to an :class:`InProcRelay`: frames it sends reach the relay's
    read loop; ``frames`` is everything the relay sent it, decoded, in arrival order."""

    def __init__(self, relay: InProcRelay, port: int) -> None:
        self.relay = relay
        server = relay.server
        assert server is not None
        config = server.config
        self.reading = True  # False: a reader that stopped (the relay's writes pile up)
        self.frames: list[msgspec.Struct] = []
        self.key: SigningKey | None = None
        self.welcome: Welcome | None = None
        self.closed = False
        self.close_code: int | None = None  # of the relay's close frame, if it sent one
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()
        # Our side's codec: masks what we send, parses what the relay sends.
        self._codec = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN,
                                     max_size=None)
        protocol = ServerProtocol(state=State.OPEN, max_size=config.max_size_ceiling)
        self.conn = RelayConnection(protocol, None, ping_interval=None,  # type: ignore[arg-type]
                                    write_limit=config.write_limit)
        self.transport = MemoryTransport(self, port)
        # websockets' Connection's own, not ServerConnection's (that one starts the
        # HTTP handshake; this connection is open from the start).
        Connection.connection_made(self.conn, self.transport)
        self.conn.request = Request("/", Headers())  # (the handshake it did not have)
        self.handler = asyncio.create_task(server._connection(self.conn), name="peer-handler")

    @property
    def user(self) -> bytes:
        assert self.key is not None
        return bytes(self.key.verify_key)

    @property
    def session(self) -> Any:
        """The relay's Session for this connection."""
        server = self.relay.server
        assert server is not None
        for session in server.sessions:
            if session.ws is self.conn:
                return session
        raise LookupError("no session for this peer")

    def next_id(self) -> int:
        return next(self._ids)

    # --- sending --------------------------------------------------------------------------

    def send(self, frame: msgspec.Struct) -> None:
        """Hand a frame to the relay's read loop (no waiting for an answer)."""
        self.send_raw(frames.encode(frame))

    def send_raw(self, data: bytes) -> None:
        assert not self.closed, "connection closed"
        self._codec.send_binary(data)
        for chunk in self._codec.data_to_send():
            self.conn.data_received(chunk)

    def send_text(self, text: str) -> None:
        """A text message (the protocol's frames are binary)."""
        assert not self.closed, "connection closed"
        self._codec.send_text(text.encode())
        for chunk in self._codec.data_to_send():
            self.conn.data_received(chunk)

    async def request(self, frame: msgspec.Struct, timeout: float = TIMEOUT) -> msgspec.Struct:
        """Send a request; its answer (the next frame with its id)."""
        since = len(self.frames)
        self.send(frame)
        rid = frame.id  # type: ignore[attr-defined]
        return await self.wait_for(lambda f: getattr(f, "id", None) == rid, timeout,
                                   since=since)

    async def call(self, frame_type: type[msgspec.Struct], **fields: Any) -> msgspec.Struct:
        return await self.request(frame_type(id=self.next_id(), **fields))

    # --- receiving ------------------------------------------------------------------------

    def _received_bytes(self, data: bytes) -> None:
        self._codec.receive_data(data)
        for event in self._codec.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.BINARY:
                self.frames.append(frames.decode_reply(event.data))
            elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                self.close_code = Close.parse(event.data).code
                # our codec answers the closing handshake, as a client's would; handed
                # over on the next loop turn (we are inside the relay's write)
                reply = [c for c in self._codec.data_to_send() if c]
                asyncio.get_running_loop().call_soon(self._answer_close, reply)
        self._arrived.set()

    def _answer_close(self, chunks: list[bytes]) -> None:
        if not self.transport.is_closing():
            for chunk in chunks:
                self.conn.data_received(chunk)

    def _lost(self) -> None:
        self.closed = True
        self._arrived.set()

    def read(self) -> None:
        """Read what the relay has written so far (a paused reader catching up once)."""
        self.transport.deliver()

    def resume(self) -> None:
        """Read from now on, starting with what piled up."""
        self.reading = True
        self.transport.deliver()

    def of(self, kind: type[T]) -> list[T]:
        return [f for f in self.frames if isinstance(f, kind)]

    async def wait_for(
        self, match: Callable[[msgspec.Struct], bool], timeout: float = TIMEOUT, *,
        since: int = 0,
    ) -> Any:
        """The first received frame ``match`` accepts (waiting for it to arrive), from
        ``frames[since]`` on."""
        seen = since
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames[seen:]:
                    if match(frame):
                        return frame
                seen = len(self.frames)
                if self.closed:
                    raise ConnectionError("the relay closed the connection")
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_count(self, kind: type[T], count: int, timeout: float = TIMEOUT) -> list[T]:
        """Wait until ``count`` frames of ``kind`` have arrived; all of them."""
        await eventually(lambda: len(self.of(kind)) >= count, timeout,
                         what=lambda: f"{len(self.of(kind))} of {count} {kind.__name__}")
        return self.of(kind)

    # --- protocol steps -------------------------------------------------------------------

    async def login(self, key: SigningKey, *, publish: bool = True) -> Self:
        welcome = await self.call(Hello, versions=[frames.PROTOCOL_VERSION])
        assert isinstance(welcome, Welcome), welcome
        self.welcome = welcome
        origin = identity.relay_origin(self.relay.url)  # what a client dialling it signs
        sig = key.sign(identity.auth_message(origin, welcome.challenge)).signature
        authed = await self.call(Auth, user=bytes(key.verify_key), sig=sig, origin=origin)
        assert isinstance(authed, Authed), authed
        self.key = key
        if publish:  # a signed prekey makes the identity one others can send to
            pub = bytes(SigningKey.generate().verify_key)
            spk = SignedPrekey(key_id=1, pub=pub,
                               sig=key.sign(identity.signed_prekey_message(pub)).signature)
            status = await self.call(PublishPrekeys, user=self.user, spk=spk,
                                     otks=[])
            assert isinstance(status, PrekeyStatus), status
        return self

    async def close(self) -> None:
        """Drop the connection (as a lost socket) and let the relay clean up."""
        if not self.closed:
            self.transport.abort()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.handler, TIMEOUT)


class InProcRelay:
    """A :class:`Server` started in this event loop (listening on a loopback port nobody
    uses) whose connections are :class:`Peer` objects."""

    def __init__(self, data: Path, **settings: Any) -> None:
        settings.setdefault("name", RELAY_NAME)
        settings.setdefault("sync", "normal")  # no fsync per commit: tests, not durability
        # The writes in a thread: no process to start per relay. The relay's default, the
        # writer process, runs under every RelayProcess test and tests/relay/test_writer_process.py.
        settings.setdefault("writer", "thread")
        self.config = Config(host="127.0.0.1", port=0, data=Path(data), log_level="warning",
                             **settings)
        self.server: Server | None = None
        self.peers: list[Peer] = []
        self._ports = itertools.count(40000)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            await self.stop()

    async def start(self) -> Self:
        """A new Server on this relay's data (its config, its database)."""
        assert self.server is None, "already running"
        self.server = Server(self.config)
        with contextlib.redirect_stdout(None):  # its "listening on" line
            await self.server.startup()
        if self.config.port == 0:  # restarts keep the port (clients keep their URL)
            self.config = dataclasses.replace(self.config, port=self.server.port)
        return self

    @property
    def url(self) -> str:
        """Its WebSocket listener on loopback, for a client core in this process."""
        return f"ws://127.0.0.1:{self.config.port}"

    async def stop(self) -> None:
        """Shut down as on SIGTERM (queued writes committed and answered); peers dropped."""
        await self._drop_peers()
        assert self.server is not None
        await self.server.shutdown()
        await self._end_handlers()
        self.server = None

    async def restart(self) -> Self:
        await self.stop()
        return await self.start()

    async def crash(self) -> None:
        """Stop as a killed process would: writes still queued are never committed nor
        answered (one being committed may still land, unanswered); nothing is flushed."""
        server = self.server
        assert server is not None
        store = server.store
        store._closing = True  # (nothing new is accepted)
        if store._writer is not None:  # the write queue dies with it
            store._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await store._writer
            store._writer = None
        await self._drop_peers()
        await server.chores.close()
        if server._watcher is not None:
            server._watcher.cancel()
        if server._ws is not None:
            server._ws.close()
            await server._ws.wait_closed()
        for conn in (store._rdb, store._db):
            if conn is not None:
                await conn.close()
        store._rdb = store._db = None
        server._release_data()  # (the kernel drops a killed process's relay.lock)
        await self._end_handlers()
        self.server = None

    async def _drop_peers(self) -> None:
        for peer in self.peers:
            if not peer.closed:
                peer.transport.abort()
        await asyncio.sleep(0)  # (their connection_lost callbacks)

    async def _end_handlers(self) -> None:
        for peer in self.peers:
            if not peer.handler.done():
                peer.handler.cancel()
            with contextlib.suppress(BaseException):
                await peer.handler
        self.peers = []

    @property
    def store(self) -> Any:
        assert self.server is not None
        return self.server.store

    @property
    def hub(self) -> Any:
        assert self.server is not None
        return self.server.hub

    def connect(self) -> Peer:
        peer = Peer(self, next(self._ports))
        self.peers.append(peer)
        return peer

    async def login(self, key: SigningKey | None = None, *, publish: bool = True) -> Peer:
        return await self.connect().login(key or SigningKey.generate(), publish=publish)


# what the relay_with fixture (tests/relay/conftest.py) gives: await it with Config settings
StartRelay = Callable[..., Awaitable[InProcRelay]]


async def eventually(
    check: Callable[[], bool], timeout: float = TIMEOUT, *,
    what: Callable[[], str] | None = None,
) -> None:
    """Wait (polling every loop turn, then every 10 ms) until ``check()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    turns = 0
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting: {what() if what else check}")
        turns += 1
        await asyncio.sleep(0 if turns < 50 else 0.01)
