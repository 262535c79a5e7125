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
from websockets.frames import Frame, Opcode
from websockets.protocol import State

__all__ = ["RelayConnection", "Outgoing"]


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
            self._frame = Frame(Opcode.BINARY, self.data).serialize(mask=False, extensions=[])
        return self._frame


class RelayConnection(ServerConnection):
    async def send_frames(self, messages: Iterable[bytes]) -> None:
        """Send binary messages in order, in one write (ConnectionClosed if closed)."""
        async with self.send_context():
            for message in messages:
                self.protocol.send_binary(message)

    def queue_frame(self, message: bytes | Outgoing) -> bool:
        """Put a binary message into the protocol for the next :meth:`flush` (no await,
        no write yet). False when the connection is not open or its write buffer is over
        write_limit: then use :meth:`send_frames`, which waits."""
        if self.protocol.state is not State.OPEN or self.paused:
            return False
        if isinstance(message, Outgoing):
            if not self.protocol.extensions:  # (the relay negotiates none)
                self.protocol.writes.append(message.frame)
                return True
            message = message.data
        self.protocol.send_binary(message)
        return True

    def flush(self) -> None:
        """Write what :meth:`queue_frame` queued, in one write."""
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
