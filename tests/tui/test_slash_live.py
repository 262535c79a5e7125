"""Slash commands against a real relay: they take the client core's path (the CLI's)."""

from __future__ import annotations

import pytest

from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.screens.confirm import ConfirmScreen
from tenchat.client.tui.widgets.message_log import MessageLog
from tests.conftest import Cli
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, eventually, in_thread, tui, until

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("paired")
@async_test
async def test_slash_commands_reach_the_peer(cli: Cli, relay: RelayProcess) -> None:
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen)
        await until(pilot, lambda: chat.client.connection_state == "online", what="online")
        log = chat.query_one(MessageLog)
        await until(pilot, lambda: any(r.text == "hello alice" for r in log.rows))
        hello = next(r for r in log.rows if r.text == "hello alice")
        bob = chat.peer
        chat.query_one("#composer").insert("/react 🎉")  # pilot can't press an emoji
        await pilot.press("enter")

        async def reacted() -> bool:
            return "🎉" in (await chat.client.cache.messages.reactions(bob, [hello.id])).get(
                hello.id, {})

        await eventually(reacted, "the reaction")
        await pilot.press(*"/reply right back at you", "enter")
        await until(pilot, lambda: any(r.text == "right back at you" and
                                       r.reply_to == hello.id for r in log.rows),
                    what="the reply")
        got = (await in_thread(cli, "bob", "--json", "inbox")).json_lines()
        assert ("alice", "right back at you") in [(m["from"], m["text"]) for m in got]
        # /edit text and /delete act on our last message (the reply, newest)
        reply = next(r for r in log.rows if r.text == "right back at you")
        await pilot.press(*"/edit right back at you, edited", "enter")
        await until(pilot, lambda: (r := log.row(reply.id)) is not None and r.edited,
                    what="edited")
        await pilot.press(*"/delete", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: (r := log.row(reply.id)) is not None and r.deleted,
                    what="deleted")
        await pilot.press(*"/poll Lunch? | pizza | sushi", "enter")
        await until(pilot, lambda: any(v.question == "Lunch?" for v in log.polls.values()),
                    what="the poll card")
        await pilot.press(*"/timer 5m", "enter")
        await until(pilot, lambda: chat.conversations[bob].timer == 300, what="timer")
        await pilot.press(*"/timer off", "enter")
        await until(pilot, lambda: not chat.conversations[bob].timer, what="timer off")
        await pilot.press(*"/block", "enter")
        await until(pilot, lambda: chat.conversations[bob].blocked, what="blocked")
        await pilot.press(*"/unblock @bob", "enter")
        await until(pilot, lambda: not chat.conversations[bob].blocked, what="unblocked")
        # /story posts a text story (bob, following or not, can list it)
        await pilot.press(*"/story out for lunch", "enter")

        async def posted() -> bool:
            views = await chat.client.stories.stories_of("me")
            return any(v.text == "out for lunch" for v in views)

        await eventually(posted, "the story")
