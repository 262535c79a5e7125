"""A cancelled request stays cancelled, even when its answer arrives in the same instant.

On Python 3.11 ``asyncio.wait_for`` returns the result instead of raising when the
cancellation and the answer meet; a ``client.run()`` cancelled at that moment went on
receiving (a full-suite run hung in tests/client/test_privacy_live.py that way). Pure
asyncio: a stand-in socket, no relay.
"""
from __future__ import annotations

import asyncio

import pytest

from tenchat.client.connection import RelayConnection
from tenchat.common import frames as f


class _Socket:
    """Takes what is sent; the test answers by hand."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)


@pytest.mark.asyncio
async def test_a_request_cancelled_as_its_answer_arrives_is_cancelled() -> None:
    conn = RelayConnection("ws://127.0.0.1:1", user=b"u" * 32, sign=lambda _m: b"")
    conn._ws = _Socket()  # type: ignore[assignment]
    task = asyncio.create_task(conn.request(f.Subscribe))
    while not conn._requests._waiting:
        await asyncio.sleep(0)
    (rid, fut), = conn._requests._waiting.items()
    fut.set_result(f.Ok(id=rid))  # the answer and the cancellation in one loop turn
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
