"""The slash commands open the feature screens (no relay: a home built directly), and the
feature keys are bound on the chat screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tenchat.client.tui.screens.close_friends import CloseFriendsScreen
from tenchat.client.tui.screens.devices import DevicesScreen
from tenchat.client.tui.screens.gift import GiftScreen
from tenchat.client.tui.screens.poll_create import PollCreateScreen
from tenchat.client.tui.screens.sticker_packs import StickerPacksScreen
from tenchat.client.tui.screens.story_compose import StoryComposeScreen
from tenchat.client.tui.screens.story_viewers import StoryViewersScreen
from tenchat.client.tui.screens.wallet import WalletScreen
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, tui, until
from tests.tui.seed import DEAD_RELAY, build

CASES = [("/wallet", WalletScreen, "alt+w"), ("/poll", PollCreateScreen, "alt+o"),
         ("/story", StoryComposeScreen, "alt+y"), ("/packs", StickerPacksScreen, "alt+i"),
         ("/friends", CloseFriendsScreen, "alt+f"), ("/viewers", StoryViewersScreen, "alt+r"),
         ("/devices", DevicesScreen, "alt+l"), ("/gift", GiftScreen, None)]


async def chat_ready(pilot: Any) -> Any:
    """The chat screen with its conversation open and the composer focused (the
    conversation opens in a worker and gives the composer the focus after it; until then
    keys go to the conversation list)."""
    app = pilot.app
    chat: Any = await until(pilot, lambda: app.screen.__class__.__name__ == "ChatScreen"
                            and app.screen)
    await until(pilot, lambda: chat.peer is not None)
    await app.workers.wait_for_complete()
    await until(pilot, lambda: app.focused is chat.query_one("#composer"),
                what="the composer's focus")
    return chat


@pytest.mark.parametrize(("command", "screen", "key"), CASES)
@async_test
async def test_slash_alone_and_key_open_the_screen(tmp_path: Path, command: str,
                                                   screen: type, key: str | None) -> None:
    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_ready(pilot)
        await pilot.press(*command, "enter")
        opened = await until(pilot, lambda: isinstance(app.screen, screen) and app.screen,
                             what=command)
        if isinstance(opened, GiftScreen):
            assert opened.handle == "bob"  # the open conversation's peer
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is chat, what="closed")
        if key is not None:
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, screen), what=key)


@async_test
async def test_poll_with_arguments_stays_a_one_liner(tmp_path: Path) -> None:
    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_ready(pilot)
        await pilot.press(*"/poll Lunch? | noodles | pizza", "enter")

        async def poll_sent() -> bool:
            rows = await chat.client.page(chat.peer, limit=5)
            return any(r.text == "[poll] Lunch?" for r in rows)

        for _ in range(200):
            if await poll_sent():
                break
            await pilot.pause(0.05)
        assert await poll_sent()
        assert not isinstance(app.screen, PollCreateScreen)
