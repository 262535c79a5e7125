"""Groups and message actions through a real relay: alice in the TUI, bob a core Client.
A group made from the TUI, bob's post with its author, reply/react/edit/delete from the
keyboard as bob's cache sees them, the member panel's roles, a mention in a muted group."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest

from tenchat.client.service import Client
from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.screens.help import HelpScreen
from tenchat.client.tui.screens.react import ReactScreen
from tenchat.client.tui.widgets.message_log import MessageLog
from tests.conftest import PASSPHRASE, Cli
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, eventually, in_thread, screen_text, tui, until

pytestmark = pytest.mark.slow


@async_test
async def test_group_from_the_tui_and_message_actions(cli: Cli, relay: RelayProcess) -> None:
    def setup() -> None:
        cli("alice", "init", "--handle", "alice")
        cli("bob", "init", "--handle", "bob")

    await in_thread(setup)
    bob = await Client.unlock(cli.home("bob"), relay.url, PASSPHRASE)
    bob_run = asyncio.create_task(bob.run())
    app = tui(cli.home("alice"), relay.url)
    try:
        async with app.run_test(size=SIZE) as pilot:
            chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen)
            await until(pilot, lambda: chat.client.connection_state == "online")
            await until(pilot, lambda: bob.connection_state == "online")
            # a new group from the TUI
            await pilot.press("ctrl+g", *"Team", "enter", *"@bob", "enter")
            await until(pilot, lambda: chat.peer is not None and len(chat.peer) == 16,
                        what="the new group open")
            group = chat.peer
            await until(pilot, lambda: "# Team" in screen_text(app), what="group in the list")
            groups = await eventually(bob.groups.list, "bob in the group")
            assert groups[0].id == group
            # the member panel shows the roles
            await pilot.press("alt+g")
            await until(pilot, lambda: "@alice (you)  owner" in screen_text(app))
            assert "@bob  member" in screen_text(app)
            await pilot.press("alt+g")
            # bob posts; alice sees it with its author
            posted = await bob.compose(group, "hello team")
            log = chat.query_one(MessageLog)
            await until(pilot, lambda: log.row(posted.id), what="bob's post")
            await until(pilot, lambda: re.search(r"bob │ hello team", screen_text(app)),
                        what="author shown")
            # reply from the keyboard
            await pilot.press("ctrl+l", "up", "r", *"welcome!", "enter")
            reply = await eventually(
                lambda: _find(bob, group, "welcome!"), "the reply at bob")
            assert reply.reply_to == posted.id and reply.sender == chat.client.user
            await until(pilot, lambda: "↳ @bob: hello team" in screen_text(app))
            # react to bob's message
            await pilot.press("ctrl+up", "up")
            await until(pilot, lambda: log.selected_id == posted.id)
            await pilot.press("e")
            await until(pilot, lambda: isinstance(app.screen, ReactScreen))
            await pilot.press("1")
            await eventually(
                lambda: _reactions(bob, group, posted.id, {"👍": 1}), "the reaction at bob")
            await until(pilot, lambda: "👍 1" in screen_text(app))
            # edit our reply: reacting ended selecting, so Up (from the composer) selects
            # the newest message — our reply
            await until(pilot, lambda: chat.query_one("#composer").has_focus)
            await pilot.press("up")
            await until(pilot, lambda: log.selected_id == reply.id)
            await pilot.press("E")
            await until(pilot, lambda: chat.editing == reply.id)
            await pilot.press(*" (edited)", "enter")
            await eventually(lambda: _text(bob, group, reply.id, "welcome! (edited)"),
                             "the edit at bob")
            await until(pilot, lambda: "welcome! (edited)" in screen_text(app))
            # delete it
            await pilot.press("ctrl+up")
            await until(pilot, lambda: log.selected_id == reply.id)
            await pilot.press("d", "y")
            await eventually(lambda: _deleted(bob, group, reply.id), "the delete at bob")
            await until(pilot, lambda: "message deleted" in screen_text(app))
            # a mention notifies in a muted group; an ordinary message doesn't
            await pilot.press("alt+m")
            await until(pilot, lambda: chat.conversations[group].muted, what="muted")
            await pilot.press("f1")  # the group is not in view
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            rung = app.notifier.rung
            quiet = await bob.compose(group, "no need to look")
            await until(pilot, lambda: log.row(quiet.id), what="quiet post")
            await pilot.pause(0.2)
            assert app.notifier.rung == rung
            loud = await bob.compose(group, "@alice please look")
            await until(pilot, lambda: log.row(loud.id), what="mention")
            assert log.row(loud.id).mention
            await until(pilot, lambda: app.notifier.rung == rung + 1, what="mention bell")
    finally:
        bob_run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bob_run
        await bob.close()


async def _find(client: Client, group: bytes, text: str) -> Any:
    rows = await client.page(group, limit=50)
    return next((r for r in rows if r.text == text), None)


async def _reactions(client: Client, group: bytes, msg_id: bytes, want: dict) -> bool:
    return (await client.cache.messages.reactions(group, [msg_id])).get(msg_id) == want


async def _text(client: Client, group: bytes, msg_id: bytes, want: str) -> bool:
    row = await client.cache.messages.get(group, msg_id)
    return row is not None and row.text == want and row.edited


async def _deleted(client: Client, group: bytes, msg_id: bytes) -> bool:
    row = await client.cache.messages.get(group, msg_id)
    return row is not None and row.deleted
