"""A hostile relay can't exhaust the client's memory (issue 12 item 7): a frame larger
than the relay's own max_frame is refused unread, and pushes sent faster than the client
handles them are bounded; either way the client says why it disconnected."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tenchat.client import connection as conn_mod
from tenchat.client.connection import ConnectionLost, RelayConnection
from tenchat.client.service import Client
from tenchat.common import frames as f
from tenchat.common.crypto.keys import IdentityKey
from tests.e2e.test_hostile_relay import make_client

MiB = 1024 * 1024


async def evil_relay(after_subscribe, max_frame: int = MiB):  # type: ignore[no-untyped-def]
    """A relay that welcomes and authenticates anyone, answers subscribe with ok and then
    runs ``after_subscribe(ws)``."""
    async def handler(ws: ServerConnection) -> None:
        try:
            async for data in ws:
                frame = f.decode_request(data)  # type: ignore[arg-type]
                if isinstance(frame, f.Hello):
                    await ws.send(f.encode(f.Welcome(id=frame.id, version=1, relay="evil",
                                                     challenge=os.urandom(32),
                                                     max_frame=max_frame)))
                elif isinstance(frame, f.Auth):
                    await ws.send(f.encode(f.Authed(id=frame.id, user=frame.user,
                                                    otk_count=100)))
                elif isinstance(frame, f.Subscribe):
                    await ws.send(f.encode(f.Ok(id=frame.id)))
                    await after_subscribe(ws)
                else:
                    await ws.send(f.encode(f.Ok(id=frame.id)))  # type: ignore[attr-defined]
        except ConnectionClosed:
            pass

    server = await serve(handler, "127.0.0.1", 0, max_size=None)
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"ws://127.0.0.1:{port}", server


@pytest.mark.asyncio
async def test_a_huge_frame_is_refused_unread(tmp_path: Path) -> None:
    sent = [0]

    def chunks() -> Iterator[bytes]:  # 256 MiB, one fragment at a time
        chunk = b"\x00" * MiB
        for _ in range(256):
            sent[0] += 1
            yield chunk

    async def huge(ws: ServerConnection) -> None:
        await ws.send(chunks())

    url, server = await evil_relay(huge)
    client: Client = await make_client(tmp_path, url)
    try:
        with pytest.raises(ConnectionLost, match="larger than the 1114112 bytes allowed"):
            await asyncio.wait_for(client.sync(), 60)
    finally:
        await client.close()
        server.close()
    # The client stopped reading at its limit (1 MiB + slack): the relay could not push
    # the rest of the 256 MiB into it (the socket buffers hold a few MiB at most).
    assert sent[0] < 32, sent[0]


@pytest.mark.asyncio
async def test_pushes_faster_than_handled_are_bounded(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(conn_mod, "PUSH_BYTES", 4 * MiB, raising=False)
    sent = [0]

    async def flood(ws: ServerConnection) -> None:
        body = os.urandom(60_000)
        for seq in range(1, 1001):  # ~60 MiB of deliveries, and never a `synced`
            await ws.send(f.encode(f.Deliver(seq=seq, msg=os.urandom(16),
                                             sender=os.urandom(32), at=0, body=body)))
            sent[0] = seq

    url, server = await evil_relay(flood)
    me = IdentityKey.generate()
    conn = RelayConnection(url, user=me.public, sign=me.sign)
    await conn.open()
    try:
        await conn.request(f.Subscribe)
        # Nobody takes the pushes (a client busy with a long batch): the connection
        # ends once 4 MiB of them wait, rather than growing without bound.
        await asyncio.wait_for(conn.closed.wait(), 60)
        assert conn.push_bytes <= 4 * MiB
        assert conn.error is not None and "faster than they could be handled" in conn.error
        with pytest.raises(ConnectionLost, match="faster than they could be handled"):
            await conn.request(f.Subscribe)
        frames = []
        while (frame := await conn.next_push()) is not None:
            frames.append(frame)
        assert 0 < len(frames) < 80 and conn.push_bytes == 0
    finally:
        await conn.close()
        server.close()
    assert sent[0] < 1000
