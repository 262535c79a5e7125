"""Groups and message actions on a home built directly (no relay): the group in the list,
authors, replies, reactions, edited/deleted/pinned, seen by; the member panel and its
roles; message selection and the composer's reply/edit modes; mention notifications;
the timer and privacy screens; every key documented."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tenchat.client.cache import MessageRow
from tenchat.client.events import MessageAdded, TypingChanged
from tenchat.client.tui.keys import ALL_KEYS
from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.screens.privacy import PrivacyScreen
from tenchat.client.tui.screens.timer import TimerScreen
from tenchat.client.tui.widgets.member_panel import MemberPanel, allowed
from tenchat.client.tui.widgets.message_log import MessageLog
from tenchat.client.tui.widgets.reply_bar import ReplyBar
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, screen_text, tui, until
from tests.tui.seed import DEAD_RELAY, GROUP, build, mid, user

ROOT = Path(__file__).resolve().parents[2]


async def group_chat(pilot, app) -> ChatScreen:  # type: ignore[no-untyped-def]
    chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen,
                       what="the chat screen")
    await until(pilot, lambda: chat.peer == GROUP and chat.group_info is not None,
                what="the group open")
    await pilot.pause(0.2)
    return chat


@async_test
async def test_group_in_list_with_authors_and_decorations(tmp_path: Path) -> None:
    await build(tmp_path, group=True)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await group_chat(pilot, app)
        assert chat.conversations[GROUP].title == "Team"
        text = screen_text(app)
        assert "# Team" in text and "3 members" in text
        assert re.search(r"09:00 +bob │ standup moved", text)
        assert re.search(r"09:01 +carol │ works for me 👌", text)
        assert "edited" in text
        assert "message deleted" in text and "oops" not in text
        assert "📌 pinned · seen by 2" in text
        assert "↳ @bob: @alice can you share the agenda?" in text
        assert re.search(r"👍 2 +❤️ 1", text)
        assert "seen by 1" in text


@async_test
async def test_member_panel_roles_and_permissions(tmp_path: Path) -> None:
    await build(tmp_path, group=True)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await group_chat(pilot, app)
        panel = chat.query_one(MemberPanel)
        assert not panel.display
        await pilot.press("alt+g")
        await until(pilot, lambda: panel.display)
        text = screen_text(app)
        assert "@alice (you)  owner" in text
        assert "@bob  admin" in text and "@carol  member" in text
        # alice (owner) is highlighted first: she can't remove herself, nor leave
        assert panel.check_action("remove_member", ()) is None
        assert panel.check_action("leave", ()) is None
        assert panel.check_action("add_member", ()) is True
        await pilot.press("down")  # @bob, an admin: the owner may demote or remove
        assert panel.check_action("demote", ()) is True
        assert panel.check_action("promote", ()) is None
        assert panel.check_action("remove_member", ()) is True
        await pilot.press("alt+g")
        await until(pilot, lambda: not panel.display)
    # the same rules as the relay's
    assert allowed("remove_member", "admin", "member", False)
    assert not allowed("remove_member", "admin", "admin", False)
    assert not allowed("promote", "admin", "member", False)
    assert not allowed("add_member", "member", None, False)
    assert allowed("leave", "member", "member", True)


@async_test
async def test_select_reply_edit_modes_and_escape(tmp_path: Path) -> None:
    await build(tmp_path, group=True)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await group_chat(pilot, app)
        log = chat.query_one(MessageLog)
        bar = chat.query_one(ReplyBar)
        await pilot.press("up")  # in the empty composer: select the latest message
        await until(pilot, lambda: log.selected_id == mid(5, "team"))
        assert log.has_focus
        await pilot.press("up")
        assert log.selected_id == mid(4, "team")
        await pilot.press("r")
        await until(pilot, lambda: chat.reply_to == mid(4, "team"))
        assert bar.display and "replying to @bob: @alice can you share" in screen_text(app)
        await pilot.press("escape")
        assert chat.reply_to is None and not bar.display
        # E on someone else's message: refused in the UI
        await pilot.press("ctrl+up")  # back to the messages: the newest again, not the old
        assert log.has_focus and log.selected_id == mid(5, "team")
        await pilot.press("up", "E")
        assert chat.editing is None and log.selected_id == mid(4, "team")
        await pilot.press("up", "up", "E")  # our "same here" (09:02)
        await until(pilot, lambda: chat.editing == mid(2, "team"))
        assert chat.query_one("#composer").text == "same here; I'll bring the notes"
        await pilot.press("escape")
        assert chat.editing is None and chat.query_one("#composer").text == ""


@async_test
async def test_mention_notifies_in_a_muted_group_but_not_in_dnd(tmp_path: Path) -> None:
    await build(tmp_path, group=True)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await group_chat(pilot, app)
        await pilot.press("alt+m")
        await until(pilot, lambda: chat.conversations[GROUP].muted, what="muted")
        await pilot.press("ctrl+pagedown")  # look at another conversation
        await until(pilot, lambda: chat.peer != GROUP)

        def post(n: int, text: str, mention: bool) -> None:
            row = MessageRow(mid(100 + n, "team"), GROUP, False, text, 1, 1, 2,
                             sender=user("bob"), mention=mention)
            chat.post_message(ChatScreen.CoreEvent(MessageAdded(row)))

        rung = app.notifier.rung
        post(1, "lunch?", False)
        await pilot.pause(0.2)
        assert app.notifier.rung == rung  # muted
        post(2, "@alice lunch?", True)
        await until(pilot, lambda: app.notifier.rung == rung + 1, what="mention bell")
        await pilot.press("alt+d")  # do not disturb wins over mentions
        post(3, "@alice hello?", True)
        await pilot.pause(0.2)
        assert app.notifier.rung == rung + 1


@async_test
async def test_timer_action_sets_the_conversation_timer(tmp_path: Path) -> None:
    await build(tmp_path, group=True)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await group_chat(pilot, app)
        await pilot.press("ctrl+pagedown")  # @bob (1:1)
        await until(pilot, lambda: chat.peer == user("bob"))
        await pilot.press("alt+t")
        await until(pilot, lambda: isinstance(app.screen, TimerScreen))
        await pilot.press("down", "down", "enter")  # off, 30 seconds, [5 minutes]
        await until(pilot, lambda: chat.conversations[user("bob")].timer == 300,
                    what="timer in the list")
        assert await chat.client.cache.conversations.timer(user("bob")) == 300
        await until(pilot, lambda: "⏱ 5m" in screen_text(app), what="timer in the header")


@async_test
async def test_privacy_screen_toggles_a_setting(tmp_path: Path) -> None:
    await build(tmp_path)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen)
        assert await chat.client.setting("read_receipts") is True
        await pilot.press("alt+s")
        await until(pilot, lambda: isinstance(app.screen, PrivacyScreen))
        await pilot.pause(0.2)
        await pilot.press("space")  # the first: read receipts
        for _ in range(50):
            if await chat.client.setting("read_receipts") is False:
                break
            await asyncio.sleep(0.05)
        assert await chat.client.setting("read_receipts") is False
        await pilot.press("tab", "space")  # typing indicators
        await until(pilot, lambda: not app.screen.query_one("#typing").value)
        await pilot.pause(0.2)
        assert await chat.client.setting("typing") is False
        await pilot.press("escape")
        await pilot.press("alt+s")
        await until(pilot, lambda: isinstance(app.screen, PrivacyScreen))
        await pilot.pause(0.2)
        assert app.screen.query_one("#read_receipts").value is False


def test_every_key_is_documented() -> None:
    docs = (ROOT / "docs" / "tui.md").read_text()
    missing = [spec.id for spec in ALL_KEYS if f"`{spec.id}`" not in docs
               and spec.description not in docs]
    assert not missing, f"docs/tui.md lacks {missing}"


@async_test
async def test_group_typing_names_who_types(tmp_path: Path) -> None:
    await build(tmp_path, group=True)
    app = tui(tmp_path, DEAD_RELAY, run_client=False)
    async with app.run_test(size=SIZE) as pilot:
        chat = await group_chat(pilot, app)

        def typing(who: str, active: bool) -> None:
            chat.post_message(ChatScreen.CoreEvent(TypingChanged(GROUP, active, user(who))))

        typing("bob", True)
        await until(pilot, lambda: "@bob is typing…" in screen_text(app), what="bob")
        typing("carol", True)
        await until(pilot, lambda: "@bob and @carol are typing…" in screen_text(app),
                    what="both")
        typing("bob", False)
        await until(pilot, lambda: "@carol is typing…" in screen_text(app), what="carol")
        # A message from carol ends her indicator.
        row = MessageRow(mid(99, "team"), GROUP, False, "done typing", 1_800_000_000_000,
                         1_800_000_000_000, 2, sender=user("carol"))
        chat.post_message(ChatScreen.CoreEvent(MessageAdded(row)))
        await until(pilot, lambda: "typing…" not in screen_text(app), what="no one typing")
