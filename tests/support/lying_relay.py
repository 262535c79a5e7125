"""Relay M, a hostile relay for tests: a few lines of websockets in front of a real
relay that pass every frame through both ways, except those a test's ``answer`` replies
to itself (tests/e2e/test_hostile_relay_*.py, whose real relay takes auth signed for
M's origin too, as if M were its TLS front)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve

from tenchat.common import frames as f
from tests.support.anvil import free_port
from tests.support.relay import RelayProcess

# A request frame -> the encoded answer M sends instead of forwarding it, or None.
Answer = Callable[[f.Request], bytes | None]


async def lying_relay(upstream: str, answer: Answer, port: int) -> tuple[str, Server]:
    """Start relay M on ``port`` in front of ``upstream``: its URL and its server."""
    async def handler(ws: ServerConnection) -> None:
        async with connect(upstream, max_size=None) as up:
            async def down() -> None:
                async for data in up:
                    await ws.send(data)

            task = asyncio.create_task(down())
            try:
                async for data in ws:
                    lie = answer(f.decode_request(data))  # type: ignore[arg-type]
                    if lie is not None:
                        await ws.send(lie)
                        continue
                    await up.send(data)
            finally:
                task.cancel()

    server = await serve(handler, "127.0.0.1", port)
    return f"ws://127.0.0.1:{port}", server



@contextlib.contextmanager
def relay_behind(data: Path, m_port: int) -> Iterator[RelayProcess]:
    """The real relay, taking auth signed for the origin of relay M on ``m_port`` too (as
    for its TLS front)."""
    port = free_port()
    origins = f"ws://127.0.0.1:{port},ws://127.0.0.1:{m_port}"
    with RelayProcess(data, port=port, args=["--origins", origins]) as proc:
        yield proc
