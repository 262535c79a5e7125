"""The TUI against a real relay: first run, sending with Enter, live receiving, ticks,
typing, mute, offline sending, new chat, block, verify."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tenchat.client.cache import DELIVERED, PENDING, READ, SENT
from tenchat.client.service import Client
from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.screens.first_run import FirstRunScreen
from tenchat.client.tui.screens.verify import VerifyScreen
from tenchat.client.tui.widgets.conversation_header import ConversationHeader
from tenchat.client.tui.widgets.message_log import MessageLog
from tests.conftest import PASSPHRASE, Cli
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, in_thread, screen_text, tui, until

pytestmark = pytest.mark.slow


def mine(log: MessageLog, text: str) -> object:
    return next((r for r in log.rows if r.text == text and r.outgoing), None)


@pytest.mark.usefixtures("paired")
@async_test
async def test_send_receive_live_and_ticks(cli: Cli, relay: RelayProcess) -> None:
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen)
        log = chat.query_one(MessageLog)
        await until(pilot, lambda: any(r.text == "hello alice" for r in log.rows), what="hello")
        await until(pilot, lambda: chat.client.connection_state == "online")
        await pilot.press("ctrl+l", *"hi bob", "enter")
        await until(pilot, lambda: (m := mine(log, "hi bob")) and m.status == SENT,
                    what="sent")
        assert "✓ " in screen_text(app)
        got = (await in_thread(cli, "bob", "--json", "inbox")).json_lines()
        assert [(m["from"], m["text"]) for m in got] == [("alice", "hi bob")]
        await until(pilot, lambda: mine(log, "hi bob").status == DELIVERED, what="delivered")
        await in_thread(cli, "bob", "read", "alice")
        await until(pilot, lambda: mine(log, "hi bob").status == READ, what="read")
        # an incoming message appears with no keypress
        await in_thread(cli, "bob", "send", "alice", "live one")
        await until(pilot, lambda: any(r.text == "live one" for r in log.rows), what="live")
        await until(pilot, lambda: "live one" in screen_text(app))
        # multi-line: Ctrl+J makes a new line, Enter sends both lines as one message
        await pilot.press(*"line one", "ctrl+j", *"line two", "enter")
        await until(pilot, lambda: mine(log, "line one\nline two"), what="two lines")


@pytest.mark.usefixtures("paired")
@async_test
async def test_typing_indicator_bell_and_mute(cli: Cli, relay: RelayProcess) -> None:
    def setup() -> None:
        cli("carol", "init", "--handle", "carol")
        cli("carol", "send", "alice", "first from carol")
        cli("alice", "inbox")  # conversations known at connect time are watched for presence

    await in_thread(setup)
    bob = await Client.unlock(cli.home("bob"), relay.url, PASSPHRASE)
    bob_run = asyncio.create_task(bob.run())
    app = tui(cli.home("alice"), relay.url)
    try:
        async with app.run_test(size=SIZE) as pilot:
            chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen)
            await until(pilot, lambda: chat.client.connection_state == "online")
            await until(pilot, lambda: len(chat.conversations) == 2, what="two conversations")
            bob_peer = next(p for p, c in chat.conversations.items() if c.handle == "bob")
            await chat.open_conversation(bob_peer)
            await until(pilot, lambda: bob.connection_state == "online")
            await bob.send_typing(chat.client.user, True)
            header = chat.query_one(ConversationHeader)
            await until(pilot, lambda: header.typing, what="typing")
            assert "typing…" in screen_text(app)
            await bob.send_typing(chat.client.user, False)
            await until(pilot, lambda: not header.typing, what="stopped typing")
            await until(pilot, lambda: chat.conversations[bob_peer].online, what="presence")

            rung = app.notifier.rung
            await in_thread(cli, "carol", "send", "alice", "ring")  # not in view: bell
            await until(pilot, lambda: app.notifier.rung == rung + 1, what="bell")
            await pilot.press("ctrl+pagedown")  # to carol
            await until(pilot, lambda: chat.peer != bob_peer)
            await pilot.press("alt+m")
            await until(pilot, lambda: chat.conversations[chat.peer].muted, what="muted")
            await pilot.press("ctrl+pageup")  # back to bob
            await until(pilot, lambda: chat.peer == bob_peer)
            await in_thread(cli, "carol", "send", "alice", "quiet")
            await until(pilot, lambda: any(c.last and c.last.text == "quiet"
                                           for c in chat.conversations.values()))
            assert app.notifier.rung == rung + 1  # muted: no bell
    finally:
        bob_run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bob_run
        await bob.close()


@pytest.mark.usefixtures("paired")
@async_test
async def test_offline_compose_pending_then_sent(cli: Cli, relay: RelayProcess) -> None:
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen)
        log = chat.query_one(MessageLog)
        await until(pilot, lambda: chat.client.connection_state == "online")
        # bob's message may still be on its way when the relay comes up: the conversation
        # it starts opens by itself.
        await until(pilot, lambda: any(r.text == "hello alice" for r in log.rows),
                    what="bob's message")
        await in_thread(relay.terminate)
        await until(pilot, lambda: "reconnecting in" in screen_text(app), what="reconnecting")
        await pilot.press("ctrl+l", *"while down", "enter")
        await until(pilot, lambda: (m := mine(log, "while down")) and m.status == PENDING)
        assert "…" in screen_text(app)
        await in_thread(relay.start)
        await until(pilot, lambda: mine(log, "while down").status >= SENT, timeout=20,
                    what="sent after reconnect")
        await until(pilot, lambda: "● online" in screen_text(app))
    got = (await in_thread(cli, "bob", "--json", "inbox")).json_lines()
    assert [m["text"] for m in got] == ["while down"]


@async_test
async def test_first_run_new_chat_block_and_verify(cli: Cli, relay: RelayProcess) -> None:
    await in_thread(cli, "bob", "init", "--handle", "bob")
    home = cli.home("alice")
    app = tui(home, relay.url, passphrase=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, FirstRunScreen))
        await pilot.press(*"alice", "enter", "enter", *"pass phrase", "enter",
                          *"pass phrase", "enter")
        chat = await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen,
                           timeout=20, what="identity created")
        assert chat.client.handle == "alice"
        await pilot.press("ctrl+n", *"@bob", "enter")
        await until(pilot, lambda: chat.peer is not None and
                    chat.conversations.get(chat.peer) and
                    chat.conversations[chat.peer].handle == "bob", what="chat with bob")
        await pilot.press(*"hello from the first run", "enter")
        log = chat.query_one(MessageLog)
        await until(pilot, lambda: (m := mine(log, "hello from the first run"))
                    and m.status >= SENT)

        await pilot.press("alt+v")
        verify = await until(pilot, lambda: isinstance(app.screen, VerifyScreen) and
                             app.screen.safety_number and app.screen)
        theirs = (await in_thread(cli, "bob", "--json", "contacts", "verify", "alice")).json()
        assert verify.safety_number == theirs["safety_number"]
        assert " ".join(theirs["safety_number"].split()[:6]) in screen_text(app)
        await pilot.press("escape")

        await pilot.press("f12")
        await until(pilot, lambda: chat.conversations[chat.peer].blocked, what="blocked")
        await pilot.press(*"nope", "enter")
        await until(pilot, lambda: "blocked" in screen_text(app))
        assert mine(log, "nope") is None
        await pilot.press("f12")
        await until(pilot, lambda: not chat.conversations[chat.peer].blocked, what="unblocked")
    got = (await in_thread(cli, "bob", "--json", "inbox")).json_lines()
    assert [m["text"] for m in got] == ["hello from the first run"]
