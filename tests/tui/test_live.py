"""The TUI against a real relay: sending, receiving live, ticks, typing, offline."""

from __future__ import annotations

import pytest

from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.widgets.message_log import MessageLog
from tests.conftest import Cli
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, in_thread, pair, tui, until

pytestmark = pytest.mark.slow


@async_test
async def test_send_with_enter_and_receive_live(cli: Cli, relay: RelayProcess) -> None:
    await in_thread(pair, cli)
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen)
        log = chat.query_one(MessageLog)
        await until(pilot, lambda: any(r.text == "hello alice" for r in log.rows), what="hello")
        await pilot.press("ctrl+l", *"hi bob", "enter")
        await until(pilot, lambda: any(r.text == "hi bob" for r in log.rows), what="own msg")
        got = (await in_thread(cli, "bob", "--json", "inbox")).json_lines()
        assert [(m["from"], m["text"]) for m in got] == [("alice", "hi bob")]
        await in_thread(cli, "bob", "send", "alice", "live one")
        await until(pilot, lambda: any(r.text == "live one" for r in log.rows), what="live")
