"""A tiny raw protocol client for tests: frames in, frames out, no client core.

    async with await RelayClient.login(relay.url, key, relay_name) as c:
        reply = await c.request(Send(id=c.next_id(), to=..., msg=..., body=b"x"))
        push = await c.next_push(Deliver)

Answers are matched to requests by id with the client's own matching
(:class:`tenchat.client.connection.PendingRequests`); frames no request waits for
(pushes, and errors whose request id could not be recovered) go to ``c.pushes``. Unlike
the client's ``RelayConnection`` it does no hello or auth of its own and sends whatever
bytes a test gives it — bad frames included.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Self, TypeVar

import msgspec
import pytest
from nacl.signing import SigningKey
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tenchat.client.connection import PendingRequests
from tenchat.common import frames, identity
from tenchat.common.frames import (
    Ack,
    Auth,
    Authed,
    Error,
    Fetch,
    Hello,
    Messages,
    Ok,
    OneTimePrekey,
    PrekeyStatus,
    PublishPrekeys,
    Register,
    Send,
    SignedPrekey,
    Stored,
    Welcome,
)

__all__ = [
    "RelayClient", "async_test", "new_key", "user_of", "msg_id", "logged_in", "assert_alive",
]

T = TypeVar("T")
F = TypeVar("F", bound=msgspec.Struct)

TIMEOUT = 10.0


def async_test(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Mark an async test for pytest-asyncio (strict mode), with a 60 s limit on its body.
    The same as ``@pytest.mark.asyncio`` plus that limit; fixtures are still injected."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.wait_for(fn(*args, **kwargs), 60)

    return pytest.mark.asyncio(wrapper)


def new_key() -> SigningKey:
    return SigningKey.generate()


def user_of(key: SigningKey) -> bytes:
    return bytes(key.verify_key)


def msg_id() -> bytes:
    return os.urandom(16)


class RelayClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pushes: asyncio.Queue[msgspec.Struct] = asyncio.Queue()
        self.welcome: Welcome | None = None
        self.key: SigningKey | None = None
        self.origin = ""  # relay_origin of the URL dialled: what auth signs
        self._requests = PendingRequests()
        self._reader = asyncio.create_task(self._read())

    # --- connection ---------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> Self:
        ws = await connect(url, max_size=None, compression=None, **kwargs)
        client = cls(ws)
        client.origin = identity.relay_origin(url)
        return client

    @classmethod
    async def login(cls, url: str, key: SigningKey, relay_name: str = "test-relay") -> Self:
        """Connect, hello, auth (asserting each step succeeds)."""
        client = await cls.connect(url)
        welcome = await client.hello()
        assert isinstance(welcome, Welcome), welcome
        assert welcome.relay == relay_name, welcome.relay
        authed = await client.auth(key)
        assert isinstance(authed, Authed), authed
        return client

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def user(self) -> bytes:
        assert self.key is not None
        return user_of(self.key)

    # --- frames -------------------------------------------------------------------------

    def next_id(self) -> int:
        return self._requests.next_id()

    async def request(self, frame: msgspec.Struct, timeout: float = TIMEOUT) -> msgspec.Struct:
        """Send a request frame; its answer (the frame with the same id)."""
        return await self.request_raw(frames.encode(frame), frame.id, timeout)  # type: ignore[attr-defined]

    async def request_raw(
        self, data: bytes | str, rid: int | None, timeout: float = TIMEOUT
    ) -> msgspec.Struct:
        """Send raw bytes (or text); the answer with ``rid``, or with ``rid`` None the next
        id-less error frame."""
        if rid is None:
            await self.ws.send(data)
            return await self.next_push(Error, timeout)
        fut = self._requests.expect(rid)
        await self.ws.send(data)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._requests.forget(rid)

    async def call(self, frame_type: type[F], **fields: Any) -> msgspec.Struct:
        """Build ``frame_type`` with a fresh id and request it."""
        return await self.request(frame_type(id=self.next_id(), **fields))

    async def next_push(self, kind: type[T] | None = None, timeout: float = TIMEOUT) -> T:
        """The next id-less frame (of ``kind``, skipping others if given)."""
        while True:
            frame = await asyncio.wait_for(self.pushes.get(), timeout)
            if kind is None or isinstance(frame, kind):
                return frame  # type: ignore[return-value]

    async def no_push(self, wait: float = 0.3) -> None:
        """Assert that no id-less frame arrives within ``wait`` seconds."""
        try:
            frame = await asyncio.wait_for(self.pushes.get(), wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected push {frame!r}")

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                assert isinstance(data, bytes), "the relay sent a text frame"
                frame = frames.decode_reply(data)
                if not self._requests.answer(frame):
                    self.pushes.put_nowait(frame)
        except ConnectionClosed:
            pass
        finally:
            self._requests.fail_all(lambda: ConnectionError("connection closed"))

    # --- protocol steps -----------------------------------------------------------------

    async def hello(self, versions: list[int] | None = None) -> msgspec.Struct:
        reply = await self.call(Hello, versions=versions or [frames.PROTOCOL_VERSION])
        if isinstance(reply, Welcome):
            self.welcome = reply
        return reply

    async def auth(self, key: SigningKey, relay_name: str | None = None) -> msgspec.Struct:
        """Auth for the URL dialled; ``relay_name``: sign for ws://relay_name instead."""
        assert self.welcome is not None, "hello first"
        origin = self.origin if relay_name is None else identity.relay_origin(
            f"ws://{relay_name}")
        sig = key.sign(identity.auth_message(origin, self.welcome.challenge)).signature
        reply = await self.call(Auth, user=user_of(key), sig=sig, origin=origin)
        if isinstance(reply, Authed):
            self.key = key
        return reply

    async def register(self, handle: str) -> msgspec.Struct:
        assert self.key is not None
        canonical = identity.normalize_handle(handle)
        sig = self.key.sign(identity.handle_message(canonical, self.user)).signature
        return await self.call(Register, handle=handle, sig=sig)

    async def publish(self, otk_ids: range | list[int] = range(0), spk_id: int = 1) -> Any:
        """Publish a (random) signed prekey and one-time prekeys with the given key ids."""
        assert self.key is not None
        pub = os.urandom(32)
        sig = self.key.sign(identity.signed_prekey_message(pub)).signature
        spk = SignedPrekey(key_id=spk_id, pub=pub, sig=sig)
        otks = [OneTimePrekey(key_id=i, pub=os.urandom(32)) for i in otk_ids]
        return await self.call(PublishPrekeys, user=self.user, spk=spk, otks=otks)


@contextlib.asynccontextmanager
async def logged_in(
    url: str, n: int = 2, *, publish: bool = True, relay_name: str = "test-relay"
) -> AsyncIterator[list[RelayClient]]:
    """``n`` fresh identities, each logged in on its own connection (and with a signed
    prekey published, so others can send to it)."""
    clients = [await RelayClient.login(url, new_key(), relay_name) for _ in range(n)]
    try:
        if publish:
            for c in clients:
                status = await c.publish()
                assert isinstance(status, PrekeyStatus), status
        yield clients
    finally:
        for c in clients:
            await c.close()


async def assert_alive(a: RelayClient, b: RelayClient) -> None:
    """``a`` can still send to ``b`` and ``b`` can fetch and ack it: both connections work."""
    mid = msg_id()
    stored = await a.call(Send, to=b.user, msg=mid, body=b"still alive")
    assert isinstance(stored, Stored), stored
    page = await b.call(Fetch, user=b.user, after=stored.seq - 1)
    assert isinstance(page, Messages), page
    assert [(m.seq, m.msg) for m in page.items] == [(stored.seq, mid)]
    ok = await b.call(Ack, seqs=[stored.seq])
    assert isinstance(ok, Ok), ok
