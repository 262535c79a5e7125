"""The social TUI's pieces without a relay: half-block drawing, path completion, the
terminal graphics choice, story order and the story row, and the image picker's live
filter preview (offline app)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from tenchat.client.tui import graphics
from tenchat.client.tui.screens.attach import AttachScreen
from tenchat.client.tui.screens.stories import play_order, story_bar
from tenchat.client.tui.widgets.image_picker import ImagePicker, complete_path
from tenchat.client.tui.widgets.image_preview import ImagePreview, half_blocks
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, tui, until
from tests.tui.seed import DEAD_RELAY, build


def png(colours: list[tuple[int, int, int]], width: int = 4) -> bytes:
    """A ``width``-wide image, one row of pixels per colour."""
    im = Image.new("RGB", (width, len(colours)))
    im.putdata([c for c in colours for _ in range(width)])
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def test_half_blocks_put_two_pixel_rows_in_one_cell() -> None:
    text = half_blocks(png([(255, 0, 0), (0, 0, 255)]), 4)
    assert text.plain == "▀▀▀▀"
    styles = {(s.style.color.triplet, s.style.bgcolor.triplet)  # type: ignore[union-attr]
              for s in text.spans}
    assert styles == {((255, 0, 0), (0, 0, 255))}


def test_half_blocks_keep_proportions_within_max_rows() -> None:
    tall = png([(i * 10, i * 10, i * 10) for i in range(20)], width=10)
    assert half_blocks(tall, 10).plain.count("\n") + 1 == 10
    squeezed = half_blocks(tall, 10, max_rows=5).plain.split("\n")
    assert len(squeezed) == 5 and all(len(line) == 5 for line in squeezed)


def test_complete_path(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(b"x")
    (tmp_path / "photos").mkdir()
    (tmp_path / ".hidden").write_bytes(b"x")
    assert complete_path(str(tmp_path / "pho")) == str(tmp_path / "photo.png")
    assert complete_path(str(tmp_path / "photos")) == str(tmp_path / "photos") + "/"
    assert complete_path(str(tmp_path) + "/") == str(tmp_path / "photo.png")
    assert complete_path(str(tmp_path / ".h")) == str(tmp_path / ".hidden")
    assert complete_path(str(tmp_path / "nothing")) is None
    assert complete_path(str(tmp_path / "missing" / "x")) is None


def test_graphics_mode_off_a_terminal_and_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENCHAT_IMAGES", raising=False)
    assert graphics.detect() == "halfblocks"  # pytest's stdout is not a terminal
    monkeypatch.setenv("TENCHAT_IMAGES", "sixel")
    assert graphics.detect() == "sixel"
    monkeypatch.setenv("TENCHAT_IMAGES", "nonsense")
    assert graphics.detect() == "halfblocks"


def story(author: bytes, handle: str, at: int, seen: bool) -> SimpleNamespace:
    return SimpleNamespace(author=author, handle=handle, posted_at=at, seen=seen)


def test_stories_play_in_posting_order_per_author_and_the_row_marks_unseen() -> None:
    bob, carol, me = b"b" * 32, b"c" * 32, b"m" * 32
    listed = [story(bob, "bob", 30, False), story(bob, "bob", 10, True),
              story(carol, "carol", 20, True), story(me, "alice", 5, True)]
    assert [(s.handle, s.posted_at) for s in play_order(listed)] == [
        ("bob", 10), ("bob", 30), ("carol", 20), ("alice", 5)]
    assert story_bar(listed, me).plain == "Stories  ● @bob ○ @carol ○ @you   s watch"


@async_test
async def test_attach_picker_previews_the_chosen_filter(tmp_path: Path) -> None:
    await build(tmp_path / "home")
    photo = tmp_path / "photo.png"
    photo.write_bytes(png([(200, 40, 40)] * 8, width=16))
    app = tui(tmp_path / "home", DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.__class__.__name__ == "ChatScreen"
                    and app.screen.peer is not None, what="chat")
        await pilot.press("alt+a")
        screen = await until(pilot, lambda: isinstance(app.screen, AttachScreen) and app.screen)
        await pilot.press(*str(photo))
        picker = screen.query_one(ImagePicker)
        preview = picker.query_one(ImagePreview)

        def colours() -> set[tuple[int, int, int]]:
            return {s.style.color.triplet for s in  # type: ignore[union-attr,misc]
                    preview._text(preview.size.width).spans}

        await until(pilot, lambda: colours() == {(200, 40, 40)}, what="original preview")
        picker.set_filter("sepia")
        await until(pilot, lambda: colours() and colours() != {(200, 40, 40)}, what="sepia")
        (r, g, b), = colours()
        assert r > g > b  # sepia's warm brown
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, AttachScreen))
