"""The relay's WebSocket connection: frames queued together leave in one socket write,
and the client's binary frames are read in one pass over what arrived.

websockets writes each frame with its own ``transport.write`` — one ``send(2)`` per
frame when the socket is writable, the largest single cost of a busy relay. Answers
to a group commit and pushes from a subscription come in bursts, so
:meth:`RelayConnection.send_frames` puts a burst into the protocol at once and
:meth:`RelayConnection.send_data` joins what is queued into one write. Framing,
closing and flow control stay websockets' own. :meth:`queue_frame` and :meth:`flush`
let the hub write a commit's pushes to an idle subscriber without waking its task.

Reading: websockets parses each incoming frame with a generator per field, queues it in
its ``Assembler`` and hands it to ``recv()`` — about a third of the event loop's Python
time at saturation for frames of ~250 bytes. :meth:`RelayConnection.data_received`
takes the frames a well-behaved client sends — final, masked, binary, within
``max_size`` — straight off the received bytes (header, then websockets' C
``apply_mask``) into a queue that :meth:`RelayConnection.recv_frame` reads without
waiting when it holds one. Pings and pongs go to websockets whole, and the connection
goes on; anything else (a close, text, a fragment, a reserved bit, an unmasked frame)
hands the bytes from that frame on to websockets for good, which answers it as it
always did. The switch is made only at a frame boundary, so websockets' parser never
sees part of a frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Final, Literal

from websockets.asyncio.server import ServerConnection
from websockets.frames import Opcode, apply_mask
from websockets.protocol import State

__all__ = ["RelayConnection", "Outgoing"]

_BINARY: Final = 0x82  # FIN, no reserved bit, opcode 2
_PING: Final = 0x89
_PONG: Final = 0x8A
_DATA_OPCODES: Final = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})


def binary_frame(data: bytes) -> bytes:
    """``data`` as one unmasked, final binary WebSocket frame with no extension (RFC 6455
    §5.2) — what ``Frame(Opcode.BINARY, data).serialize(mask=False, extensions=[])`` gives,
    without its objects and checks: every answer and push the relay sends goes through
    here (tests/relay/test_connection_frames.py holds the two equal)."""
    size = len(data)
    if size < 126:
        return bytes((0x82, size)) + data
    if size < 0x10000:
        return bytes((0x82, 126)) + size.to_bytes(2, "big") + data
    return bytes((0x82, 127)) + size.to_bytes(8, "big") + data


class Outgoing:
    """One binary message for many connections (a group entry to every online member):
    its payload, and its WebSocket frame as this server sends it — unmasked, with no
    extension — serialised once instead of once per connection."""

    __slots__ = ("data", "_frame")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = binary_frame(self.data)
        return self._frame


class RelayConnection(ServerConnection):
    _queued = 0  # bytes put into the protocol by queue_frame since the last flush

    # None until the first bytes after the handshake; then the state of reading this
    # connection's frames here, or False: websockets reads them, for good.
    _in: _Incoming | Literal[False] | None = None
    _data_seen = False  # websockets got a data frame (a message of its own)

    # --- reading ----------------------------------------------------------------------------

    async def recv_frame(self) -> bytes | str:
        """The next message, as ``recv()`` gives it (bytes, or str for a text frame);
        ConnectionClosed once the connection is closed and what it sent is read."""
        while True:
            state = self._in
            if state is False:
                return await self.recv()
            if state is not None and state.frames:
                return state.take(self)
            if self.protocol.state is State.CLOSED:
                raise self.protocol.close_exc
            if state is None:  # nothing received since the handshake: wait here
                state = self._in = _Incoming()
            state.waiter = self.loop.create_future()
            try:
                await state.waiter
            finally:
                state.waiter = None

    def data_received(self, data: bytes) -> None:
        state = self._in
        if state is None or (type(state) is _Incoming and not state.decided):
            if self.protocol.state is not State.OPEN:  # the handshake: websockets'
                super().data_received(data)
                return
            if self._data_seen or not _at_frame_boundary(self.protocol):
                self._give_up(state)
                super().data_received(data)
                return
            if state is None:
                state = self._in = _Incoming()
            state.decided = True
        if state is False or state.stopped:  # websockets reads (after what is queued)
            super().data_received(data)
            return
        buf: bytes | bytearray = data
        if state.partial:  # (a bytearray: a large frame arriving in pieces is copied once)
            state.partial += data
            if len(state.partial) < state.need:
                return
            buf, state.partial = state.partial, b""
        frames = state.frames
        queued = len(frames)
        max_size = self.protocol.max_message_size
        pos, end = 0, len(buf)
        while pos < end:
            need = pos + 2  # what this frame needs received: its first two bytes so far
            if end < need:
                break
            first, size = buf[pos], buf[pos + 1]
            if not size & 0x80 or self.protocol.state is not State.OPEN:
                return self._hand_over(state, buf, pos, queued)  # unmasked, or closing
            size &= 0x7F
            head = pos + 6
            if size >= 126:
                head = pos + (8 if size == 126 else 14)
                if end < head:
                    need = head
                    break
                size = int.from_bytes(buf[pos + 2 : head - 4], "big")
            need = head + size
            if first == _BINARY:
                if max_size is not None and size > max_size:
                    return self._hand_over(state, buf, pos, queued)  # websockets: 1009
                if end < need:
                    break
                frames.append(apply_mask(buf[head:need], buf[head - 4 : head]))
            elif first in (_PING, _PONG) and size <= 125:
                if end < need:
                    break
                super().data_received(bytes(buf[pos:need]))  # whole: websockets answers
            else:
                return self._hand_over(state, buf, pos, queued)
            pos = need
        if pos < end:
            state.partial = bytearray(buf[pos:])
            state.need = need - pos
        state.after_read(self, queued)

    def _hand_over(self, state: _Incoming, buf: bytes | bytearray, pos: int,
                   queued: int) -> None:
        """From the frame at ``pos`` on, websockets reads this connection, for good."""
        state.after_read(self, queued)
        self._give_up(state)
        super().data_received(bytes(buf[pos:]))

    def _give_up(self, state: _Incoming | Literal[False] | None) -> None:
        """websockets reads from now on; frames already read here are taken first."""
        if isinstance(state, _Incoming) and state.frames:
            state.stopped = True  # (recv_frame drains them, then calls recv())
        else:
            self._in = False
        if isinstance(state, _Incoming):
            state.wake()

    def process_event(self, event: Any) -> None:
        if getattr(event, "opcode", None) in _DATA_OPCODES:
            self._data_seen = True
        super().process_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if isinstance(self._in, _Incoming):
            self._in.wake()

    async def send_frames(self, messages: Iterable[bytes]) -> None:
        """Send binary messages in order (ConnectionClosed if closed): in one write per
        ``write_limit`` bytes, waiting for the reader after each (flow control)."""
        chunk: list[bytes] = []
        size = 0
        for message in messages:
            chunk.append(message)
            size += len(message)
            if size >= self.write_limit_high:
                await self._send_chunk(chunk)
                chunk, size = [], 0
        if chunk:
            await self._send_chunk(chunk)

    async def _send_chunk(self, messages: list[bytes]) -> None:
        async with self.send_context():  # writes, then waits while over write_limit
            for message in messages:
                self.protocol.send_binary(message)

    def writable(self) -> bool:
        """Open, and less than ``write_limit`` bytes wait to be written (in the socket's
        buffer and queued here): a frame may be queued without waiting for the reader."""
        return (self.protocol.state is State.OPEN and not self.paused
                and self.transport.get_write_buffer_size() + self._queued
                < self.write_limit_high)

    def queue_frame(self, message: bytes | Outgoing) -> bool:
        """Put a binary message into the protocol for the next :meth:`flush` (no await,
        no write yet). False when not :meth:`writable`: then use :meth:`send_frames`,
        which waits."""
        if not self.writable():
            return False
        if not self.protocol.extensions:  # (the relay negotiates none)
            frame = message.frame if isinstance(message, Outgoing) else binary_frame(message)
            self.protocol.writes.append(frame)
            self._queued += len(frame)
            return True
        if isinstance(message, Outgoing):
            message = message.data
        self.protocol.send_binary(message)
        self._queued += len(message)
        return True

    def flush(self) -> None:
        """Write what :meth:`queue_frame` queued, in one write."""
        self._queued = 0
        try:
            self.send_data()
        except Exception as exc:  # the socket failed under us: end the connection
            self.set_connection_exc(exc)
            self.transport.abort()

    def send_data(self) -> None:
        writes = self.protocol.writes
        # An empty chunk stands for a half-close: leave those to websockets as they are.
        if len(writes) > 1 and all(writes):
            self.protocol.writes = [b"".join(writes)]
        super().send_data()


def _at_frame_boundary(protocol: Any) -> bool:
    """Whether websockets' parser waits for the first byte of a frame with nothing
    buffered (so the bytes that come next may be read elsewhere): its generator is
    suspended in ``StreamReader.at_eof``. False if that can't be told (another version
    of websockets): then websockets reads the connection, as it always did."""
    if protocol.reader.buffer:
        return False
    gen = getattr(protocol, "parser", None)
    while gen is not None and getattr(gen, "gi_yieldfrom", None) is not None:
        gen = gen.gi_yieldfrom
    code = getattr(gen, "gi_code", None)
    return code is not None and code.co_name == "at_eof"


class _Incoming:
    """A connection's frames read by RelayConnection, not yet taken by recv_frame()."""

    __slots__ = ("decided", "frames", "next", "partial", "need", "waiter", "paused",
                 "stopped")

    def __init__(self) -> None:
        self.decided = False  # the first bytes after the handshake were seen
        self.frames: list[bytes] = []  # payloads; recv_frame() takes from ``next``
        self.next = 0
        self.partial: bytes | bytearray = b""  # the start of a frame not received whole
        self.need = 0  # the bytes of ``partial`` it takes to read on
        self.waiter: asyncio.Future[None] | None = None  # recv_frame(), waiting
        self.paused = False  # reading paused: too many frames not taken yet
        self.stopped = False  # websockets reads once these frames are taken

    def take(self, conn: RelayConnection) -> bytes:
        frames = self.frames
        data = frames[self.next]
        self.next += 1
        if self.next == len(frames):  # all taken: the list's memory goes
            frames.clear()
            self.next = 0
            if self.stopped:
                conn._in = False
        if self.paused and len(frames) - self.next <= (conn.max_queue_low or 0):
            self.paused = False
            conn.transport.resume_reading()
        return data

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def after_read(self, conn: RelayConnection, queued: int) -> None:
        frames = self.frames
        if len(frames) > queued:
            self.wake()
            high = conn.max_queue_high
            if high is not None and len(frames) - self.next > high and not self.paused:
                self.paused = True
                conn.transport.pause_reading()
