"""The relay reads a client's binary frames itself (relay/connection.py,
``RelayConnection.data_received``) and hands everything else to websockets: frames cut
anywhere by the network, every length class, pings between them, a text frame, a
fragmented message, an unmasked or oversized frame, a close — each answered as
websockets answered it before, in the order sent. Raw bytes on a real relay process."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct

from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from tenchat.common.frames import Error, Send, decode_reply, encode
from tenchat.relay.connection import _at_frame_boundary
from tests.support.relay import RelayProcess
from tests.support.wsclient import assert_alive, async_test, logged_in

from .conftest import SMALL_FRAME

HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def frame(payload: bytes, opcode: Opcode = Opcode.BINARY, *, fin: bool = True,
          masked: bool = True) -> bytes:
    """One client frame, as websockets serialises it."""
    return Frame(opcode, payload, fin=fin).serialize(mask=masked, extensions=[])


def send_frame(rid: int, body: int = 10) -> bytes:
    """A `send` request (unauthenticated here: answered with an error carrying ``rid``)."""
    return encode(Send(id=rid, to=os.urandom(32), msg=os.urandom(16), body=os.urandom(body)))


class Raw:
    """A WebSocket client written by hand: exactly the bytes a test gives, in the pieces
    it gives them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = bytearray()  # what the relay sent, not parsed yet

    @classmethod
    async def connect(cls, relay: RelayProcess) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(HANDSHAKE)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def write(self, data: bytes, *, pieces: int = 1, seed: int = 0) -> None:
        """``data`` in ``pieces`` writes cut at random places, each its own segment."""
        cuts = sorted(random.Random(seed).sample(range(1, len(data)), pieces - 1))
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            self.writer.write(data[start:end])
            await self.writer.drain()
            if pieces > 1:
                await asyncio.sleep(0.001)

    async def next_frame(self) -> Frame:
        while True:
            reader = StreamReader()
            reader.feed_data(bytes(self.buffer))
            try:
                next(Frame.parse(reader.read_exact, mask=False, max_size=None))
            except StopIteration as done:  # a whole frame: drop its bytes
                del self.buffer[: len(self.buffer) - len(reader.buffer)]
                parsed: Frame = done.value
                return parsed
            chunk = await asyncio.wait_for(self.reader.read(65536), 10)
            if not chunk:
                raise EOFError("the relay closed the connection")
            self.buffer += chunk

    async def answer_ids(self, n: int) -> list[int | None]:
        ids: list[int | None] = []
        while len(ids) < n:
            got = await self.next_frame()
            assert got.opcode is Opcode.BINARY, got
            reply = decode_reply(got.data)
            assert isinstance(reply, Error), reply
            ids.append(reply.id)
        return ids

    async def close_code(self) -> int:
        """The code of the relay's next frame, which must be a close."""
        got = await self.next_frame()
        assert got.opcode is Opcode.CLOSE, got
        return int(struct.unpack("!H", got.data[:2])[0])

    def close(self) -> None:
        self.writer.transport.abort()


@async_test
async def test_frames_cut_anywhere_are_read_whole_and_in_order(relay: RelayProcess) -> None:
    # every length class (7-bit, 16-bit at its edges, 64-bit: over max_frame, answered
    # too_large with its id), and enough frames to pause and resume reading
    sizes = [1, 60, 100, 200, 65_400, SMALL_FRAME + 100, *([10] * 120)]
    data = b"".join(frame(send_frame(rid, body)) for rid, body in enumerate(sizes, 1))
    for pieces, seed in ((1, 0), (len(sizes) * 3, 1), (400, 2)):
        raw = await Raw.connect(relay)
        await raw.write(data, pieces=pieces, seed=seed)
        assert await raw.answer_ids(len(sizes)) == list(range(1, len(sizes) + 1))
        raw.close()
    # and byte by byte
    raw = await Raw.connect(relay)
    few = b"".join(frame(send_frame(rid, 130)) for rid in (1, 2, 3))
    await raw.write(few, pieces=len(few), seed=3)
    assert await raw.answer_ids(3) == [1, 2, 3]
    raw.close()


@async_test
async def test_pings_between_frames_are_answered_and_reading_goes_on(
        relay: RelayProcess) -> None:
    raw = await Raw.connect(relay)
    await raw.write(frame(send_frame(1)) + frame(b"are you there", Opcode.PING)
                    + frame(b"unsolicited", Opcode.PONG) + frame(send_frame(2)), pieces=5)
    seen: list[object] = []
    while len(seen) < 3:
        got = await raw.next_frame()
        seen.append(bytes(got.data) if got.opcode is Opcode.PONG
                    else getattr(decode_reply(got.data), "id", None))
    assert seen == [1, b"are you there", 2]
    await raw.write(frame(send_frame(3)))
    assert await raw.answer_ids(1) == [3]
    raw.close()


@async_test
async def test_text_and_fragmented_messages_go_to_websockets_in_order(
        relay: RelayProcess) -> None:
    raw = await Raw.connect(relay)
    two = send_frame(2)
    await raw.write(
        frame(send_frame(1))
        + frame(b"text", Opcode.TEXT)  # answered malformed (no id: it is not a binary frame)
        + frame(two[:5], fin=False) + frame(two[5:], Opcode.CONT)  # one message in two fragments
        + frame(send_frame(3)), pieces=3)
    assert await raw.answer_ids(4) == [1, None, 2, 3]
    raw.close()


@async_test
async def test_an_unmasked_frame_fails_the_connection_with_1002(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        raw = await Raw.connect(relay)
        await raw.write(frame(send_frame(1)))
        assert await raw.answer_ids(1) == [1]
        await raw.write(frame(send_frame(2), masked=False) + frame(send_frame(3)))
        assert await raw.close_code() == 1002
        raw.close()
        await assert_alive(a, b)


@async_test
async def test_a_frame_over_max_size_closes_with_1009(relay: RelayProcess) -> None:
    raw = await Raw.connect(relay)
    header = bytes((0x82, 0xFF)) + struct.pack("!Q", 64 * 1024 * 1024) + os.urandom(4)
    await raw.write(frame(send_frame(1)))
    assert await raw.answer_ids(1) == [1]
    await raw.write(header + b"x" * 100, pieces=2)
    assert await raw.close_code() == 1009
    raw.close()


@async_test
async def test_a_close_frame_is_answered_and_later_frames_are_not_read(
        relay: RelayProcess) -> None:
    raw = await Raw.connect(relay)
    await raw.write(frame(send_frame(1)))
    assert await raw.answer_ids(1) == [1]
    await raw.write(frame(struct.pack("!H", 1000), Opcode.CLOSE) + frame(send_frame(2)))
    assert await raw.close_code() == 1000  # and no answer to 2
    assert await raw.reader.read() == b""  # then the relay ends the connection
    raw.close()


def test_websockets_parser_is_seen_at_a_frame_boundary() -> None:
    """The hand-over is made only where websockets' parser waits for a new frame: this
    holds the introspection to the installed websockets (another version: False, and
    websockets reads every frame, as before — slower, not wrong)."""
    protocol = ServerProtocol()
    protocol.receive_data(HANDSHAKE)
    protocol.send_response(protocol.accept(protocol.events_received()[0]))
    assert _at_frame_boundary(protocol)
    protocol.receive_data(frame(b"x" * 300)[:4])  # header read, payload length pending
    assert not _at_frame_boundary(protocol)
    protocol.receive_data(frame(b"x" * 300)[4:])  # (the rest, of an equal frame)
    assert [e.opcode for e in protocol.events_received()] == [Opcode.BINARY]
    assert _at_frame_boundary(protocol)
    protocol.receive_data(frame(b"y")[:1])  # one byte of the next: buffered
    assert not _at_frame_boundary(protocol)
