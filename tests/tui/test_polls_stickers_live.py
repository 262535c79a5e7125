"""Poll cards and the sticker picker through a real relay: alice in the TUI, bob a core
Client. bob's poll shows as a card, alice votes from the keyboard, the counts and the
close reach the card; alice picks a sticker and bob receives (and verifies) it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tenchat.client.service import Client
from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.screens.stickers import StickerScreen
from tenchat.client.tui.screens.vote import VoteScreen
from tenchat.client.tui.widgets.message_log import MessageLog
from tests.conftest import PASSPHRASE, Cli
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, eventually, in_thread, screen_text, tui, until

pytestmark = pytest.mark.slow


@async_test
async def test_poll_card_vote_from_the_keyboard(cli: Cli, relay: RelayProcess) -> None:
    def setup() -> None:
        cli("alice", "init", "--handle", "alice")
        cli("bob", "init", "--handle", "bob")
        cli("bob", "send", "alice", "hello alice")

    await in_thread(setup)
    bob = await Client.unlock(cli.home("bob"), relay.url, PASSPHRASE)
    bob_run = asyncio.create_task(bob.run())
    app = tui(cli.home("alice"), relay.url)
    try:
        async with app.run_test(size=SIZE) as pilot:
            chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen)
            await until(pilot, lambda: chat.client.connection_state == "online")
            await until(pilot, lambda: bob.connection_state == "online")
            alice_id = chat.client.user
            poll = await bob.polls.create(alice_id, "Lunch?", ["pizza", "sushi", "salad"])
            log = chat.query_one(MessageLog)
            await until(pilot, lambda: poll.id in log.polls, what="the poll card")
            await until(pilot, lambda: "📊 Lunch?" in screen_text(app))
            assert "○ 2 sushi" in screen_text(app) and "v to vote" in screen_text(app)
            # select it and vote for option 2 with a digit
            await pilot.press("ctrl+up")
            await until(pilot, lambda: log.selected_id is not None)
            if log.selected_id != poll.id:
                await pilot.press("down")
            await until(pilot, lambda: log.selected_id == poll.id)
            await pilot.press("v")
            await until(pilot, lambda: isinstance(app.screen, VoteScreen))
            await pilot.press("2")
            await eventually(lambda: _counts(bob, alice_id, poll.id, [0, 1, 0]),
                             "alice's vote at bob")
            await until(pilot, lambda: "● 2 sushi" in screen_text(app), what="our vote")
            assert log.polls[poll.id].mine == [1]
            # bob votes too and closes it: the card follows
            await bob.polls.vote(alice_id, poll.id, [0])
            await until(pilot, lambda: log.polls[poll.id].counts == [1, 1, 0],
                        what="bob's vote on the card")
            await until(pilot, lambda: "2 voted" in screen_text(app))
            await bob.polls.close(alice_id, poll.id)
            await until(pilot, lambda: log.polls[poll.id].closed, what="closed")
            await until(pilot, lambda: "· closed" in screen_text(app))
            await pilot.press("v")  # closed: no vote dialog
            await pilot.pause(0.2)
            assert not isinstance(app.screen, VoteScreen)
    finally:
        bob_run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bob_run
        await bob.close()


def _image(path: Path, colour: tuple[int, int, int]) -> None:
    im = Image.new("RGB", (64, 64), colour)
    im.paste(Image.frombytes("RGB", (16, 16), os.urandom(16 * 16 * 3)), (24, 24))
    out = io.BytesIO()
    im.save(out, "PNG")
    path.write_bytes(out.getvalue())


@async_test
async def test_sticker_picker_sends(cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    _image(red, (220, 20, 20))
    _image(blue, (20, 20, 220))

    def setup() -> None:
        cli("alice", "init", "--handle", "alice")
        cli("bob", "init", "--handle", "bob")
        cli("bob", "send", "alice", "hello alice")
        cli("alice", "sticker", "pack", "create", "Colours", str(red), str(blue))

    await in_thread(setup)
    bob = await Client.unlock(cli.home("bob"), relay.url, PASSPHRASE)
    bob_run = asyncio.create_task(bob.run())
    app = tui(cli.home("alice"), relay.url)
    try:
        async with app.run_test(size=SIZE) as pilot:
            chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen)
            await until(pilot, lambda: chat.client.connection_state == "online")
            await until(pilot, lambda: chat.peer is not None, what="bob's conversation open")
            await pilot.press("alt+k")
            picker = await until(pilot, lambda: isinstance(app.screen, StickerScreen)
                                 and app.screen)
            assert "Colours · 1 red" in screen_text(app)
            assert "Colours · 2 blue" in screen_text(app)
            await until(pilot, lambda: "▀" in screen_text(app), what="a half-block preview")
            await pilot.press("down", "enter")
            await until(pilot, lambda: app.screen is not picker)
            got = await eventually(lambda: _find(bob, chat.client.user, "[sticker: blue]"),
                                   "the sticker at bob")
            sticker = (await bob.stickers.refs(chat.client.user, [got.id]))[got.id]
            entry, data = await bob.stickers.image(sticker)  # fetched and verified
            assert entry.name == "blue" and Image.open(io.BytesIO(data)).size == (64, 64)
            # alice's log shows it as a picture under its name
            log = chat.query_one(MessageLog)
            await until(pilot, lambda: any(r.text == "[sticker: blue]" for r in log.rows))
            await until(pilot, lambda: any(log.stickers.values()), what="the sticker picture")
    finally:
        bob_run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bob_run
        await bob.close()


async def _counts(client: Client, conv: bytes, poll: bytes, want: list[int]) -> bool:
    return (await client.polls.view(conv, poll)).counts == want


async def _find(client: Client, conv: bytes, text: str) -> Any:
    rows = await client.page(conv, limit=50)
    return next((r for r in rows if r.text == text), None)
