"""The vote dialog and the sticker picker on their own: which keys choose what."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from textual.app import App

from tenchat.client.polls import PollView
from tenchat.client.stickers import StickerPack
from tenchat.client.tui.render import poll_card
from tenchat.client.tui.screens.stickers import StickerScreen
from tenchat.client.tui.screens.vote import VoteScreen
from tenchat.common.crypto.media import MediaRef
from tenchat.common.stickers import StickerEntry
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, screen_text, until


def poll(multiple: bool, mine: list[int] | None = None) -> PollView:
    return PollView(b"c" * 32, b"p" * 16, b"u" * 32, "Release day?", ["Mon", "Tue", "Wed"],
                    multiple, False, False, [2, 0, 1], 3, mine or [], None)


class Host(App[None]):
    def __init__(self, screen: Any) -> None:
        super().__init__()
        self.modal = screen
        self.result: Any = "unset"

    def on_mount(self) -> None:
        self.push_screen(self.modal, self.done)

    def done(self, value: Any) -> None:
        self.result = value


@async_test
async def test_vote_dialog_single_choice_digit_votes() -> None:
    app = Host(VoteScreen(poll(False)))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Release day?" in screen_text(app))
        assert "○ 2  Tue  (0)" in screen_text(app)
        await pilot.press("2")
        await until(pilot, lambda: app.result != "unset")
    assert app.result == [1]


@async_test
async def test_vote_dialog_multiple_marks_then_enter() -> None:
    app = Host(VoteScreen(poll(True, mine=[0])))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "■ 1  Mon" in screen_text(app))
        await pilot.press("1", "3")  # unmark Mon, mark Wed
        await until(pilot, lambda: "■ 3  Wed" in screen_text(app) and "□ 1  Mon" in
                    screen_text(app))
        await pilot.press("down", "space", "enter")  # highlight moves to Tue: mark it
        await until(pilot, lambda: app.result != "unset")
    assert app.result == [1, 2]


@async_test
async def test_vote_dialog_zero_takes_the_vote_back_escape_cancels() -> None:
    app = Host(VoteScreen(poll(False, mine=[1])))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("0")
        await until(pilot, lambda: app.result != "unset")
    assert app.result == []
    app = Host(VoteScreen(poll(False)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await until(pilot, lambda: app.result != "unset")
    assert app.result is None


def test_poll_card_marks_our_vote_and_bars() -> None:
    lines = poll_card(poll(False, mine=[2]), 60, [["bob", "carol"], [], ["you"]])
    assert lines[0] == ("📊 Release day?", "question")
    assert lines[1] == ("○ 1 Mon  ██████████ 2  bob, carol", "option")
    assert lines[2] == ("○ 2 Tue  ░░░░░░░░░░ 0", "option")
    assert lines[3] == ("● 3 Wed  █████░░░░░ 1  you", "chosen")
    narrow = poll_card(poll(False), 12)
    assert all(len(text) <= 12 for text, _ in narrow) and narrow[1][0].endswith("…")
    assert lines[-1] == ("one choice · 3 voted · v to vote", "meta")


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, "PNG")
    return out.getvalue()


@async_test
async def test_sticker_picker_previews_and_picks() -> None:
    images = {bytes([i]) * 32: png(c) for i, c in ((1, (255, 0, 0)), (2, (0, 0, 255)))}
    entries = [StickerEntry(name=n, ref=MediaRef(hash=h, key=b"k" * 32, size=len(d),
                                                 mime="image/png"))
               for n, (h, d) in zip(("red", "blue"), images.items(), strict=True)]
    packs = [StickerPack(b"m" * 32, b"k" * 32, "Colours", entries)]
    app = Host(StickerScreen(packs, images))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Colours · 2 blue" in screen_text(app))
        await until(pilot, lambda: "▀" in screen_text(app), what="the preview")
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.result != "unset")
    assert app.result == (0, 1)
    app = Host(StickerScreen([], {}))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "No sticker packs installed" in screen_text(app))
        await pilot.press("escape")
        await until(pilot, lambda: app.result != "unset")
    assert app.result is None
