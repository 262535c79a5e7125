"""Composer, selection mode and the log following new messages (pilot, seeded home)."""

from __future__ import annotations

from pathlib import Path

from textual import events

from tenchat.client.cache import MessageRow
from tenchat.client.events import MessageAdded
from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.screens.react import ReactScreen
from tenchat.client.tui.widgets.composer import Composer
from tenchat.client.tui.widgets.message_log import MessageLog
from tenchat.client.tui.widgets.status_bar import StatusBar
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, screen_text, tui, until
from tests.tui.seed import DEAD_RELAY, build, mid, user


async def chat_of(pilot, app) -> ChatScreen:  # type: ignore[no-untyped-def]
    chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen,
                       what="the chat screen")
    await until(pilot, lambda: chat.peer == user("bob"), what="bob open")
    await pilot.pause(0.1)
    return chat


def burst(app, *keys: str) -> None:  # type: ignore[no-untyped-def]
    """Keys queued at once, as one terminal read delivers them."""
    for key in keys:
        app.post_message(events.Key(key, {"enter": "\r"}.get(key, key if len(key) == 1
                                                                  else None)))


@async_test
async def test_selection_is_a_visible_mode_that_returns_to_the_composer(tmp_path: Path) -> None:
    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_of(pilot, app)
        log, composer = chat.query_one(MessageLog), chat.query_one(Composer)
        status = chat.query_one(StatusBar)
        newest = mid(7, "bob")  # 👍 (08:32)
        await pilot.press("up")  # empty composer: the newest message
        await until(pilot, lambda: log.selected_id == newest)
        assert log.has_focus and status.selecting
        assert "SELECT" in screen_text(app)
        await pilot.press("up", "up", "r")  # reply to an older one: back to the composer
        await until(pilot, lambda: composer.has_focus and chat.reply_to == mid(5, "bob"))
        assert log.selected_id is None and not status.selecting
        assert "SELECT" not in screen_text(app)
        await pilot.press("escape")  # cancel the reply
        await pilot.press("up")  # the newest again, not the old selection
        await until(pilot, lambda: log.selected_id == newest)
        await pilot.press("h", "i")  # letters that are no command go to the composer
        await until(pilot, lambda: composer.has_focus and composer.text == "hi")
        assert log.selected_id is None
        composer.clear()
        # E and the edit typed in one burst: the text goes into the edit, no React opens
        await pilot.press("up")
        await until(pilot, lambda: log.selected_id == newest)
        burst(app, "E", "e", "!")
        await until(pilot, lambda: composer.text == "👍e!", what="the edit typed")
        assert chat.editing == newest and composer.has_focus
        assert not isinstance(app.screen, ReactScreen)


@async_test
async def test_the_log_follows_new_messages(tmp_path: Path) -> None:
    await build(tmp_path, messages=60)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=(80, 24)) as pilot:
        chat = await chat_of(pilot, app)
        log = chat.query_one(MessageLog)
        await until(pilot, lambda: log.is_vertical_scroll_end and log.max_scroll_y > 0)
        n = 0

        def arrive(text: str) -> None:
            nonlocal n
            n += 1
            row = MessageRow(mid(500 + n, "new"), user("bob"), False, text,
                             1_800_000_000_000 + n, 1_800_000_000_000 + n, 2)
            chat.post_message(ChatScreen.CoreEvent(MessageAdded(row)))

        tall = "\n".join(f"tall line {i}" for i in range(40))
        arrive(tall)  # taller than the pane
        arrive("after the tall one")
        await until(pilot, lambda: "after the tall one" in screen_text(app), what="followed")
        await pilot.resize_terminal(120, 36)
        await pilot.pause(0.2)
        await pilot.resize_terminal(80, 24)
        arrive("after resizing")
        await until(pilot, lambda: "after resizing" in screen_text(app), what="resized")
        # scrolled up: new ones are counted, not scrolled to
        log.focus()
        await pilot.press("pageup", "pageup")
        await until(pilot, lambda: not log.follow)
        arrive("one")
        arrive("two")
        await until(pilot, lambda: "↓ 2 new" in screen_text(app), what="2 new")
        assert "two" not in screen_text(app).split("↓")[0].splitlines()[-1]
        await pilot.press("end")
        await until(pilot, lambda: "new · End" not in screen_text(app) and log.follow)
        assert log.is_vertical_scroll_end


@async_test
async def test_next_unread_conversation(tmp_path: Path) -> None:
    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_of(pilot, app)
        await until(pilot, lambda: chat.conversations[user("carol")].unread)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: chat.peer == user("carol"), what="carol")
        assert "did you see the release notes?" in screen_text(app)


def test_slash_parse_complete_and_escape() -> None:
    from tenchat.client.tui import slash

    assert slash.parse("/mute") == ("mute", "")
    assert slash.parse("/React  👍 ") == ("react", "👍")
    assert slash.parse("//not a command") is None
    assert slash.unescape("//not a command") == "/not a command"
    assert slash.parse("hello /mute") is None
    assert slash.complete("/mu") == "/mute "
    assert slash.complete("/un") == "/un"  # unblock, unmute, unpin: their common part
    assert slash.complete("/unm") == "/unmute "
    assert slash.complete("/mute now") is None and slash.complete("hi") is None
    for name in ("block", "mute", "pin", "react", "reply", "edit", "delete", "poll", "gift",
                 "story", "timer", "verify", "search", "help"):
        assert name in slash.COMMANDS


@async_test
async def test_slash_commands_in_the_composer(tmp_path: Path) -> None:
    from tenchat.client.tui.screens.help import HelpScreen
    from tenchat.client.tui.screens.search import SearchScreen

    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_of(pilot, app)
        composer = chat.query_one(Composer)
        bob = user("bob")
        await pilot.press(*"/mu")
        await until(pilot, lambda: "/mute" in screen_text(app) and "Tab completes"
                    in screen_text(app), what="the hint")
        await pilot.press("tab")
        await until(pilot, lambda: composer.text == "/mute ")
        await pilot.press("enter")
        await until(pilot, lambda: chat.conversations[bob].muted, what="muted")
        assert composer.text == ""
        await pilot.press(*"/unmute", "enter")
        await until(pilot, lambda: not chat.conversations[bob].muted, what="unmuted")
        await pilot.press(*"/pin", "enter")
        await until(pilot, lambda: chat.conversations[bob].pinned, what="pinned")
        await pilot.press(*"/edit", "enter")  # our last message into the composer
        await until(pilot, lambda: chat.editing == mid(7, "bob") and composer.text == "👍")
        await pilot.press("escape")
        await pilot.press(*"/nosuch", "enter")
        await until(pilot, lambda: any("No command /nosuch" in n.message
                                       for n in app._notifications), what="refused")
        await pilot.press(*"/search coffee", "enter")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await until(pilot, lambda: "and `coffee`, please" in screen_text(app)
                    or "coffee, please" in screen_text(app), what="found")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is chat)
        await pilot.press(*"/help", "enter")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Esc, q or F1 closes this" in screen_text(app)
        assert "/poll <question>" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is chat)
        await pilot.press(*"//shrug", "enter")  # a literal slash: a message
        await until(pilot, lambda: any(r.text == "/shrug" for r in
                                       chat.query_one(MessageLog).rows), what="sent")



def test_read_and_delivered_differ_by_glyph_and_codes_are_not_shown() -> None:
    from tenchat.client.tui import render
    from tenchat.client.tui.errors import human_error

    assert render.tick(2)[0] != render.tick(3)[0]  # not only a colour (NO_COLOR)
    assert human_error("bad_handle: invalid handle 'x y'") == "Invalid handle 'x y'"
    assert human_error("not a code: kept") == "not a code: kept"


@async_test
async def test_the_palette_lists_the_apps_commands_only(tmp_path: Path) -> None:
    from textual.command import CommandPalette

    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        await chat_of(pilot, app)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await until(pilot, lambda: "Mute or unmute" in screen_text(app), what="listed")
        for text in ("Screenshot", "Maximize", "Show keys"):
            assert text not in screen_text(app)


@async_test
async def test_chat_keys_are_not_taken_by_the_composer(tmp_path: Path) -> None:
    """TextArea binds F6/F7 (select line / all): from the composer they are the chat's."""
    from tenchat.client.tui.keys import CHAT_KEYS

    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_of(pilot, app)
        composer = chat.query_one(Composer)
        assert composer.has_focus
        for spec in CHAT_KEYS:
            for key in spec.key.split(","):
                found = [b.action for b in composer._bindings.key_to_bindings.get(key, ())]
                assert all(a == f"screen.{spec.id}" for a in found), (key, found)
        await pilot.press("f7")
        await until(pilot, lambda: any("hand over to an editor" in n.message
                                       for n in app._notifications), what="editor tried")


@async_test
async def test_group_search_results_name_the_group_and_author(tmp_path: Path) -> None:
    from tenchat.client.tui.screens.search import SearchScreen

    await build(tmp_path, group=True)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        await pilot.pause(0.2)
        await pilot.press("ctrl+f")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press(*"agenda")
        await until(pilot, lambda: "# Team" in screen_text(app) and "bob: " in
                    screen_text(app), what="group and author")
        assert "@?" not in screen_text(app) and "?: " not in screen_text(app)


def test_previews_fit_their_cells_whatever_the_emoji() -> None:
    from rich.cells import cell_len

    from tenchat.client.tui import render

    for text in ("👋🏽 hi there " * 10, "❤️" * 40, "🔇 muted " * 9, "plain " * 20):
        line = render.preview(render.steady(text), 24)
        assert cell_len(line) <= 24, line
        assert "\U0001F3FD" not in line and "\uFE0F" not in line
    assert render.preview("short", 24) == "short"


def test_every_slash_command_is_documented() -> None:
    from tenchat.client.tui import slash

    docs = (Path(__file__).resolve().parents[2] / "docs" / "tui.md").read_text()
    missing = [name for name in slash.COMMANDS if f"`/{name}" not in docs]
    assert not missing, f"docs/tui.md lacks {missing}"
