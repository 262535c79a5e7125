"""One authenticated WebSocket connection to a relay.

It speaks the frames of :mod:`tenchat.common.frames`: hello and challenge
auth on connect, requests matched to answers by id, pushes handed to a queue.
Reconnecting is the client core's job (it knows what to resume); which URL it dials is
:class:`RelayList`'s: one relay may be reached at several URLs (its nodes), and a lost
connection moves on to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..common import frames as f
from ..common.errors import ErrorCode, ProtocolError, TenchatError
from ..common.identity import auth_message, relay_origin

__all__ = [
    "RelayConnection", "RelayError", "RelayUnreachable", "ConnectionLost", "RateLimited",
    "RelayChanged", "PendingRequests", "tls_context", "RelayList", "open_first",
]

T = TypeVar("T", bound=msgspec.Struct)

AGENT = "tenchat/0.1.0"

log = logging.getLogger("tenchat.client.connection")


class RelayUnreachable(TenchatError):
    """No connection could be made (or it failed before auth completed)."""


class RelayChanged(RelayUnreachable):
    """The relay at a URL announced another name than the one pinned on first use."""

    def __init__(self, origin: str, announced: str, pinned: str) -> None:
        self.origin, self.announced, self.pinned = origin, announced, pinned
        super().__init__(
            f"relay {origin} now calls itself {announced!r}, not {pinned!r} as when first "
            f"used; if it was renamed on purpose, accept it with: tenchat relay trust {origin}"
        )


class ConnectionLost(TenchatError):
    """The connection closed while a request was waiting for its answer."""


class RelayError(TenchatError):
    """The relay answered a request with an error frame."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"relay refused: {message or code} ({code})")


class RateLimited(RelayError):
    """The relay answered ``rate_limited``: the frame was not read; send it again after
    ``retry_after`` seconds."""

    def __init__(self, code: str, message: str, retry_after: float) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


RATE_LIMIT_RETRIES = 3  # times a rate-limited request is sent again before giving up

# A hostile relay must not be able to exhaust the client's memory (issue 12).
# Frames: before the welcome, at most HELLO_FRAME bytes; after it, the relay's own
# max_frame (never more than MAX_FRAME, the most a relay can be configured to) plus
# FRAME_SLACK for the few fields a push adds around a frame the sender fitted into
# max_frame. A larger frame closes the connection (1009) unread: websockets checks the
# length in a frame's header before it reads the payload.
MiB = 1024 * 1024
HELLO_FRAME = 64 * 1024
MAX_FRAME = 64 * MiB
FRAME_SLACK = 64 * 1024
FRAMES_BUFFERED = 4  # complete frames websockets holds before it stops reading the socket
# Pushes wait in a queue until the client core has handled them; a relay that sends
# them faster than they are handled fills it. Past PUSH_BYTES of frames (or PUSH_FRAMES
# frames) the connection is dropped with a clear error: what was not acked comes again
# on the next connection, by then the queue is empty.
PUSH_BYTES = 32 * MiB
PUSH_FRAMES = 20_000


class PendingRequests:
    """The requests sent on one connection that wait for their answers, matched by id:
    ids are handed out in order, an answer completes the request with its id, and when the
    connection ends every request still waiting fails. (The tests' raw protocol client,
    tests/support/wsclient.py, matches its answers with this too.)"""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}

    def next_id(self) -> int:
        return next(self._ids)

    def expect(self, rid: int) -> asyncio.Future[Any]:
        """The future answer to request ``rid``; registered before the request is sent, so
        an answer can't arrive first."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        return fut

    def forget(self, rid: int) -> None:
        """Stop waiting for ``rid`` (its request was not sent, or its answer is too late)."""
        self._waiting.pop(rid, None)

    def answer(self, frame: Any) -> bool:
        """Complete the request ``frame`` answers; False when none waits for its id (a push
        has none; a late answer's request was forgotten)."""
        rid = getattr(frame, "id", None)
        fut = self._waiting.pop(rid, None) if rid is not None else None
        if fut is None or fut.done():
            return False
        fut.set_result(frame)
        return True

    def fail_all(self, error: Callable[[], BaseException]) -> None:
        """The connection ended: every request still waiting raises ``error()``."""
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(error())
        self._waiting.clear()


def tls_context(url: str, ca_file: str | Path | None) -> ssl.SSLContext | None:
    """For a wss:// URL: a context that verifies the relay's certificate against the
    system's CAs, or only against ``ca_file`` (e.g. a self-signed relay's certificate)."""
    if not url.lower().startswith("wss://"):
        return None
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise RelayUnreachable(f"cannot use CA file {ca_file}: {exc}") from None


class RelayConnection:
    def __init__(self, url: str, *, user: bytes, sign: Any, timeout: float = 10.0,
                 ca_file: str | Path | None = None, wallet_auth: Any = None,
                 known: Path | None = None, pin: bool = True) -> None:
        self.url = url
        self.ca_file = ca_file if ca_file is not None else os.environ.get("TENCHAT_CA_FILE")
        self._user = user
        self._sign = sign  # callable(bytes) -> 64-byte signature
        # callable(origin, challenge) -> (SIWE text, 65-byte signature): sign in with a
        # linked wallet (wallet_auth frame) instead of the identity key
        self._wallet_auth = wallet_auth
        # the known-relays file (client/known_relays.py): the relay's announced name is
        # pinned per origin on first use and checked on every later connection
        self._known = known
        self._pin = pin  # False: check a pin, but write none (the caller pins later)
        self._timeout = timeout
        self._requests = PendingRequests()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        # pushes waiting for next_push(), with their size; None: the connection ended
        self.pushes: asyncio.Queue[tuple[f.Reply | None, int]] = asyncio.Queue()
        self.push_bytes = 0  # sum of the sizes in self.pushes
        self.error: str | None = None  # why the connection ended, when the client ended it
        self.authed: f.Authed | None = None
        self.relay_name = ""  # as the relay announced it: shown, pinned, never signed
        self.origin = ""  # relay_origin(url): what auth and SIWE sign
        self.max_frame = 1024 * 1024  # from welcome
        self.max_blob = 0  # from welcome: 0 = the relay stores no attachments
        self.challenge = b""  # from welcome
        self.register_pow = 0  # from welcome: proof-of-work bits a register needs
        self.closed = asyncio.Event()

    async def open(self) -> f.Authed:
        """Connect, hello, and sign in (with the identity key, or the linked wallet)."""
        authed = await self._open(anonymous=False)
        assert authed is not None
        return authed

    async def open_anonymous(self) -> None:
        """Connect and say hello, and never sign in: for ``sealed_send``, which the relay
        takes from a connection that does not say who it is (docs/protocol.md §5.10)."""
        await self._open(anonymous=True)

    async def _open(self, *, anonymous: bool) -> f.Authed | None:
        try:
            # What is signed is bound to what was dialled, never to what the relay says.
            self.origin = relay_origin(self.url)
        except ValueError as exc:
            raise RelayUnreachable(str(exc)) from None
        context = tls_context(self.url, self.ca_file)
        tls: dict[str, Any] = {"ssl": context} if context is not None else {}
        try:
            async with asyncio.timeout(self._timeout):
                self._ws = await connect(
                    self.url, compression=None, max_size=HELLO_FRAME,
                    max_queue=FRAMES_BUFFERED, open_timeout=self._timeout,
                    ping_interval=20, ping_timeout=20, close_timeout=2, **tls)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise RelayUnreachable(f"cannot reach relay {self.url}: {reason}") from None
        self._reader = asyncio.create_task(self._read_loop())
        try:
            welcome = await self.request(f.Hello, versions=list(f.SUPPORTED_VERSIONS), agent=AGENT)
            if not isinstance(welcome, f.Welcome):
                raise RelayUnreachable(f"relay {self.url} sent {type(welcome).__name__} to hello")
            self.relay_name = welcome.relay
            self.max_frame, self.max_blob = welcome.max_frame, welcome.max_blob
            assert self._ws is not None
            self._ws.protocol.max_message_size = self.frame_limit
            # A register on this connection needs a proof-of-work of this many bits.
            self.challenge, self.register_pow = welcome.challenge, welcome.pow
            known = None
            if self._known is not None:
                from .known_relays import KnownRelays

                known = KnownRelays(self._known)
                pinned = known.get(self.origin)
                if pinned is not None and pinned != welcome.relay:
                    raise RelayChanged(self.origin, welcome.relay, pinned)
            if anonymous:
                return None
            if self._wallet_auth is not None:
                text, wsig = self._wallet_auth(self.origin, welcome.challenge)
                authed = await self.request(f.WalletAuth, message=text, sig=wsig)
            else:
                sig = self._sign(auth_message(self.origin, welcome.challenge))
                authed = await self.request(f.Auth, user=self._user, sig=sig, origin=self.origin)
            if not isinstance(authed, f.Authed) or authed.user != self._user:
                raise RelayUnreachable(f"relay {self.url} sent a bad answer to auth")
            if known is not None and self._pin and known.get(self.origin) is None:
                known.pin(self.origin, welcome.relay)
        except (ConnectionLost, RelayError) as exc:
            await self.close()
            raise RelayUnreachable(f"relay {self.url} refused the connection: {exc}") from None
        except BaseException:
            await self.close()
            raise
        self.authed = authed
        return authed

    @property
    def frame_limit(self) -> int:
        """The largest frame read from the relay (after its welcome)."""
        return max(0, min(self.max_frame, MAX_FRAME)) + FRAME_SLACK

    async def next_push(self) -> f.Reply | None:
        """The next push from the relay, in order; None once the connection has ended."""
        frame, size = await self.pushes.get()
        self.push_bytes -= size
        return frame

    def has_push(self) -> bool:
        return not self.pushes.empty()

    def _lost(self) -> ConnectionLost:
        return ConnectionLost(self.error or "connection to the relay was lost")

    async def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            async for data in self._ws:
                if isinstance(data, str):
                    continue
                try:
                    frame = f.decode_reply(data)
                except ProtocolError:
                    continue  # a newer relay's frame we do not know; nothing to answer
                if getattr(frame, "id", None) is not None:
                    self._requests.answer(frame)  # an answer nobody waits for is dropped
                    continue
                if (self.push_bytes + len(data) > PUSH_BYTES
                        or self.pushes.qsize() >= PUSH_FRAMES):
                    self.error = (f"the relay {self.url} sent pushes faster than they could be "
                                  f"handled (over {PUSH_BYTES // MiB} MiB or {PUSH_FRAMES} "
                                  "waiting); disconnected")
                    log.warning("%s", self.error)
                    await self._ws.close(1008, "too many unhandled pushes")
                    break
                self.push_bytes += len(data)
                self.pushes.put_nowait((frame, len(data)))
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009 and not exc.rcvd_then_sent:
                self.error = (f"the relay {self.url} sent a frame larger than the "
                              f"{self._ws.protocol.max_message_size} bytes allowed; "
                              "disconnected")
                log.warning("%s", self.error)
        finally:
            self._requests.fail_all(self._lost)
            self.closed.set()
            self.pushes.put_nowait((None, 0))

    async def request(self, kind: type[T], /, **fields: Any) -> f.Reply:
        """Send one request and wait for its answer; RelayError for an error frame.
        A frame the relay turned down as ``rate_limited`` (dropped unread, so safe to send
        again) is sent again after its ``retry_after``, a few times."""
        for _ in range(RATE_LIMIT_RETRIES):
            try:
                return await self._request_once(kind, fields)
            except RateLimited as exc:
                if exc.retry_after > self._timeout:
                    raise
                await asyncio.sleep(exc.retry_after)
        return await self._request_once(kind, fields)

    async def _request_once(self, kind: type[T], fields: dict[str, Any]) -> f.Reply:
        if self._ws is None or self.closed.is_set():
            raise ConnectionLost(self.error or "not connected to the relay")
        rid = self._requests.next_id()
        fut = self._requests.expect(rid)
        try:
            await self._ws.send(f.encode(kind(id=rid, **fields)))
        except ConnectionClosed:
            self._requests.forget(rid)
            raise self._lost() from None
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancellation that
            # arrives as the reply does, and a cancelled client.run() would go on running.
            async with asyncio.timeout(self._timeout):
                reply: f.Reply = await fut
        except TimeoutError:
            self._requests.forget(rid)
            raise ConnectionLost(f"the relay did not answer within {self._timeout:g} s") from None
        if isinstance(reply, f.Error):
            if reply.error == ErrorCode.RATE_LIMITED:
                raise RateLimited(reply.error, reply.message, reply.retry_after / 1000)
            raise RelayError(reply.error, reply.message)
        return reply

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


async def announced_name(url: str, *, ca_file: str | Path | None = None,
                         timeout: float = 10.0) -> str:
    """The name the relay at ``url`` announces in its welcome (hello only, no auth)."""
    context = tls_context(url, ca_file)
    tls: dict[str, Any] = {"ssl": context} if context is not None else {}
    try:
        async with connect(url, compression=None, open_timeout=timeout, **tls) as ws:
            await ws.send(f.encode(f.Hello(id=1, versions=list(f.SUPPORTED_VERSIONS),
                                           agent=AGENT)))
            async with asyncio.timeout(timeout):
                reply = f.decode_reply(await ws.recv())  # type: ignore[arg-type]
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed,
            ProtocolError) as exc:
        raise RelayUnreachable(f"cannot reach relay {url}: {str(exc) or type(exc).__name__}") \
            from None
    if not isinstance(reply, f.Welcome):
        raise RelayUnreachable(f"relay {url} sent {type(reply).__name__} to hello")
    return reply.relay


class RelayList:
    """The URLs of one relay (its nodes): ``"ws://a:8765,ws://b:8765"`` as ``--relay``,
    ``TENCHAT_RELAY`` or the identity's stored relay give it. The client dials the
    current one first; when a connection to it is lost, the next one becomes current, so
    a reconnect goes straight to another node instead of waiting for this one."""

    def __init__(self, value: str) -> None:
        self.urls = [url.strip() for url in value.split(",") if url.strip()]
        if not self.urls:
            raise RelayUnreachable("no relay URL given")
        self._current = 0

    @property
    def current(self) -> str:
        return self.urls[self._current]

    def in_order(self) -> list[str]:
        """Every URL, the current one first, then the ones after it (wrapping)."""
        i = self._current
        return self.urls[i:] + self.urls[:i]

    def use(self, url: str) -> None:
        self._current = self.urls.index(url)

    def lost(self) -> None:
        """The connection to the current URL was lost: the next one is tried first."""
        self._current = (self._current + 1) % len(self.urls)


async def open_first(relays: RelayList, connect_to: Any) -> tuple[RelayConnection, f.Authed]:
    """Open ``connect_to(url)`` (a :class:`RelayConnection`) for each URL in turn until one
    authenticates; that URL becomes current. A relay that changed its name stops the
    search (it is not a node of the same relay); if none answers, the last error."""
    error: RelayUnreachable | None = None
    for url in relays.in_order():
        conn = connect_to(url)
        try:
            authed = await conn.open()
        except RelayChanged:
            raise
        except RelayUnreachable as exc:
            if len(relays.urls) > 1:
                log.info("relay %s unreachable, trying the next: %s", url, exc)
            error = exc
            continue
        relays.use(url)
        return conn, authed
    assert error is not None
    raise error


def is_not_found(exc: RelayError) -> bool:
    return exc.code == ErrorCode.NOT_FOUND
