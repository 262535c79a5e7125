"""The TUI on a home built directly (no relay): unlock, history paging, search, help,
palette, key settings, resize."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from tenchat.client.settings import Settings
from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.screens.help import HelpScreen
from tenchat.client.tui.screens.search import SearchScreen
from tenchat.client.tui.screens.unlock import UnlockScreen
from tenchat.client.tui.widgets.conversation_list import ConversationList
from tenchat.client.tui.widgets.message_log import MessageLog
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, chat_composed, screen_text, tui, until
from tests.tui.seed import DEAD_RELAY, build, mid, user


async def chat_of(pilot, app) -> ChatScreen:  # type: ignore[no-untyped-def]
    return await until(pilot, lambda: chat_composed(app), what="the chat screen")


@async_test
async def test_unlock_screen_rejects_then_accepts(tmp_path: Path) -> None:
    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, passphrase=None, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, UnlockScreen))
        await pilot.press(*"wrong", "enter")
        await until(pilot, lambda: "Wrong passphrase" in screen_text(app), what="error")
        await pilot.press(*"correct horse battery staple", "enter")
        chat = await chat_of(pilot, app)
        assert chat.client.handle == "alice"


@async_test
async def test_100k_messages_open_and_page_with_bounded_widgets(tmp_path: Path) -> None:
    await build(tmp_path, messages=100_000)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_of(pilot, app)
        log = chat.query_one(MessageLog)
        await until(pilot, lambda: log.rows and log.rows[-1].text == "👍", what="latest")
        widgets = len(list(app.screen.query("*")))
        assert widgets < 60, widgets
        oldest = log.rows[0].key
        # scroll to the top over and over: older pages load, the window stays bounded
        for _ in range(8):
            log.scroll_to(y=0, animate=False, immediate=True)
            await until(pilot, lambda: not log.paging, what="page")
            await pilot.pause()
        assert log.rows[0].key < oldest - 500
        assert len(log.rows) <= log.window
        assert log.has_newer
        assert len(list(app.screen.query("*"))) == widgets  # never a widget per message
        # End brings back the latest page
        log.focus()
        await pilot.press("end")
        await until(pilot, lambda: log.rows[-1].text == "👍" and not log.has_newer)


@async_test
async def test_search_finds_and_jumps_in_context(tmp_path: Path) -> None:
    await build(tmp_path, messages=2_000)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_of(pilot, app)
        await pilot.press("ctrl+f")
        search = await until(pilot, lambda: isinstance(app.screen, SearchScreen) and app.screen)
        await pilot.press(*"number 123")
        await until(pilot, lambda: search.hits, what="hits")
        assert search.hits[0].message.text.startswith("history message number 123")
        await pilot.press("ctrl+t")  # this conversation only (bob's) — still found
        await until(pilot, lambda: search.here_only and search.hits)
        await pilot.press("enter")
        log = chat.query_one(MessageLog)
        want = mid(1239, "bulk") if search.hits[0].message.text.endswith("1239") else \
            search.hits[0].message.id
        await until(pilot, lambda: log.highlight_id == want, what="jump")
        assert any(r.id == want for r in log.rows) and log.has_newer
        assert "history message number 123" in screen_text(app)
        # across conversations: carol's message, and jumping opens her conversation
        await pilot.press("ctrl+f", *"release")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen) and app.screen.hits)
        await pilot.press("enter")
        await until(pilot, lambda: chat.peer == user("carol"), what="carol opened")


@async_test
async def test_help_palette_keymap_and_dnd(tmp_path: Path) -> None:
    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False,
              settings=Settings(keys={"search": "f8"}))
    # Tall enough for the whole key table (it scrolls at 80x24; the snapshots show that).
    async with app.run_test(size=(120, 90)) as pilot:
        chat = await chat_of(pilot, app)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        # (on a loaded machine the screen can be there a moment before its table is drawn)
        await until(pilot, lambda: "New line in the message" in screen_text(app),
                    what="the key table")
        text = screen_text(app)
        for needle in ("F8", "Search messages", "Ctrl+N", "New chat by handle", "Ctrl+J",
                       "Alt+M", "Do not disturb", "Enter"):
            assert needle in text, needle
        await pilot.press("escape")
        await pilot.press("f8")  # the configured key
        await until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.press(*"mute")
        await until(pilot, lambda: "Mute or unmute this conversation" in screen_text(app),
                    what="palette")
        await pilot.press("escape")
        await pilot.press("ctrl+p", *"do not disturb")
        await until(pilot, lambda: "Do not disturb" in screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: app.notifier.do_not_disturb)
        assert "DND" in screen_text(app)
        assert isinstance(app.screen, ChatScreen) and chat is app.screen


@async_test
async def test_resize_80x24_reflows(tmp_path: Path) -> None:
    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=(120, 40)) as pilot:
        chat = await chat_of(pilot, app)
        log = chat.query_one(MessageLog)
        # Rows can arrive before the first layout (wrapped to a stand-in width): wait for
        # the lines of the real 120-column pane before measuring.
        await until(pilot, lambda: log.rows and log.wrap_width > 80, what="laid out")
        wide_lines = log.line_count
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: log.line_count > wide_lines, timeout=30, what="rewrap")
        text = screen_text(app)
        assert all(len(line) <= 80 for line in text.splitlines())
        assert "@bob" in text and "offline" in text
        assert chat.query_one(ConversationList).size.width <= 24
        await pilot.press("ctrl+l", *"still usable", "ctrl+j", *"two lines")
        assert chat.query_one("#composer").text == "still usable\ntwo lines"
        assert not list(chat.query(Input))


@async_test
async def test_a_burst_of_keys_sends_in_order(tmp_path: Path) -> None:
    """Keys that arrive together (a paste, a fast typist, tmux send-keys) are handled in
    order: Enter sends exactly the text typed before it, and what follows starts the next
    message. (With Enter as a priority binding it ran before the queued characters.)"""
    from textual import events

    from tenchat.client.tui.widgets.composer import Composer

    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_of(pilot, app)
        chat.query_one(Composer).focus()
        await pilot.pause()
        burst = [*"burst one", "enter", *"two:", "ctrl+j", *"2b", "enter", *"three"]
        for key in burst:  # all queued at once, as a terminal read delivers them
            char = {"enter": "\r", "ctrl+j": "\n"}.get(key, key)
            app.post_message(events.Key(key if len(key) > 1 else key, char))
        await until(pilot, lambda: chat.query_one(Composer).text == "three", what="three")
        assert chat.peer is not None
        rows = await chat.client.page(chat.peer, limit=2)
        assert [r.text for r in rows] == ["burst one", "two:\n2b"]
