"""Peer-chosen names never reach Textual as markup (security review M5): a group named
like markup renders as text in the attach screen, with no click action and no crash."""

from __future__ import annotations

from pathlib import Path

from tenchat.client.tui.screens.attach import AttachScreen
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, screen_text, tui, until
from tests.tui.seed import DEAD_RELAY, GROUP, build

HOSTILE = "[/bold][@click=app.quit]x"


@async_test
async def test_a_markup_group_name_is_text_in_the_attach_screen(tmp_path: Path) -> None:
    await build(tmp_path, group=True, group_name=HOSTILE)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: getattr(app.screen, "peer", None) == GROUP,
                    what="the group open")
        await pilot.pause(0.2)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, AttachScreen), what="attach screen")
        await pilot.pause(0.2)
        assert f"Send a file to {HOSTILE}" in screen_text(app)
        title = app.screen.query(".title").first()
        await pilot.click(title)  # no click action hides in the name
        await pilot.pause(0.2)
        assert app.is_running and isinstance(app.screen, AttachScreen)


@async_test
async def test_a_look_alike_group_name_shows_its_invisible_character(tmp_path: Path) -> None:
    """Security review L5: "Fam\\u200bily" must not look like "Family" in the list and
    the header."""
    await build(tmp_path, group=True, group_name="Fam\u200bily")
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: getattr(app.screen, "peer", None) == GROUP,
                    what="the group open")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "\u200b" not in text
        assert text.count("Fam\\u200bily") >= 2, text  # the list and the header
