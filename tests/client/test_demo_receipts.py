"""The demo's echo bot reads what it answers: the demo shows the read tick too."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tenchat.client.cache import READ
from tenchat.client.demo import echo_bot
from tests.support.clients import People
from tests.support.wsclient import async_test

pytestmark = pytest.mark.slow


@async_test
async def test_echo_bot_sends_read_receipts(people: People) -> None:
    bot, you = await people("echo", "you")
    bot_task = asyncio.create_task(echo_bot(bot))
    you_task = asyncio.create_task(you.sync(follow=True))
    try:
        await you.send_text("echo", "ping")
        peer = bot.user
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            rows = await you.page(peer, limit=5)
            mine = [r for r in rows if r.outgoing and r.text == "ping"]
            if mine and mine[0].status == READ and any(r.text == "echo: ping" for r in rows):
                break
            assert asyncio.get_running_loop().time() < deadline, [(r.text, r.status)
                                                                  for r in rows]
            await asyncio.sleep(0.1)
    finally:
        for task in (bot_task, you_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
