"""The relay writes its WebSocket frames itself on the hot path (relay/connection.py,
``binary_frame``): byte for byte what websockets would write, at every length class."""

from __future__ import annotations

import os

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from tenchat.relay.connection import Outgoing, binary_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 1_048_600])
def test_binary_frame_is_what_websockets_serialises(size: int) -> None:
    data = os.urandom(size)
    expected = Frame(Opcode.BINARY, data).serialize(mask=False, extensions=[])
    assert binary_frame(data) == expected
    assert Outgoing(data).frame == expected
    # and a client parses it back as the same binary message
    reader = StreamReader()
    reader.feed_data(expected)
    with pytest.raises(StopIteration) as done:
        next(Frame.parse(reader.read_exact, mask=False, max_size=None))
    parsed = done.value.value
    assert parsed.opcode is Opcode.BINARY and parsed.fin and parsed.data == data
