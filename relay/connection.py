"""The relay's WebSocket connection: frames queued together leave in one socket write.

websockets writes each frame with its own ``transport.write`` — one ``send(2)`` per
frame when the socket is writable, the largest single cost of a busy relay. Answers
to a group commit and pushes from a subscription come in bursts, so
:meth:`RelayConnection.send_frames` puts a burst into the protocol at once and
:meth:`RelayConnection.send_data` joins what is queued into one write. Framing,
closing and flow control stay websockets' own. :meth:`queue_frame` and :meth:`flush`
let the hub write a commit's pushes to an idle subscriber without waking its task.
"""

from __future__ import annotations

from collections.abc import Iterable

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

__all__ = ["RelayConnection", "Outgoing"]


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
