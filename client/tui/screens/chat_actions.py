"""The chat screen's actions (its keys and the command palette): screens to open,
conversation flags, focus moves, the external editor."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from textual import work
from textual.css.query import NoMatches

from ....common.errors import TenchatError
from ...conv import is_user
from ..widgets.composer import Composer
from ..widgets.conversation_list import ConversationList
from ..widgets.member_panel import MemberPanel
from ..widgets.message_log import MessageLog
from ..widgets.status_bar import StatusBar
from .chat_base import ChatBase

__all__ = ["ChatActions"]

log = logging.getLogger("tenchat.tui")


class ChatActions(ChatBase):
    def action_search(self, query: str = "") -> None:
        from textual.widgets import Input

        from .search import SearchScreen

        def jump(hit: Any) -> None:
            if hit is not None:
                self.run_worker(self.open_conversation(hit.message.peer,
                                                       focus_key=hit.message.key,
                                                       focus_id=hit.message.id))

        screen = SearchScreen(self.client, self.peer, self.conversations)
        self.app.push_screen(screen, jump)
        if query:
            def fill() -> None:
                with contextlib.suppress(NoMatches):
                    field = screen.query_one("#query", Input)
                    field.value = query
                    field.cursor_position = len(query)

            screen.call_after_refresh(fill)

    def action_new_chat(self) -> None:
        from .new_chat import NewChatScreen

        def started(peer: bytes | None) -> None:
            if peer is not None:
                self.run_worker(self._start(peer))

        self.app.push_screen(NewChatScreen(self.client), started)

    async def _start(self, peer: bytes) -> None:
        await self.refresh_conversations()
        await self.open_conversation(peer)
        self.query_one(Composer).focus()

    def action_contacts(self) -> None:
        from .contacts import ContactsScreen

        def chosen(peer: bytes | None) -> None:
            if peer is not None:
                self.run_worker(self._start(peer))

        self.app.push_screen(ContactsScreen(self.client), chosen)

    async def action_next_conversation(self) -> None:
        await self._step(1)

    async def action_previous_conversation(self) -> None:
        await self._step(-1)

    async def _step(self, step: int) -> None:
        peer = self.query_one(ConversationList).neighbour(self.peer, step)
        if peer is not None:
            await self.open_conversation(peer)

    async def action_toggle_mute(self) -> None:
        conv = self._current()
        if conv is not None:
            await self.client.set_muted(conv.peer, not conv.muted)
            self.notify(f"@{conv.handle} {'unmuted' if conv.muted else 'muted'}")
            await self.refresh_conversations()

    async def action_toggle_pin(self) -> None:
        conv = self._current()
        if conv is not None:
            await self.client.set_pinned(conv.peer, not conv.pinned)
            await self.refresh_conversations()

    async def action_toggle_block(self) -> None:
        conv = self._current()
        if conv is None or not conv.handle:
            return
        try:
            await self.client.set_blocked(conv.handle, not conv.blocked)
        except TenchatError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"@{conv.handle} {'unblocked' if conv.blocked else 'blocked'}")
        await self.refresh_conversations()

    def action_verify(self) -> None:
        conv = self._current()
        if conv is not None and conv.handle:
            from .verify import VerifyScreen

            self.app.push_screen(VerifyScreen(self.client, conv.handle),
                                 lambda _: self._schedule_refresh())
        elif conv is not None and is_user(conv.peer):
            self._verify_pending(conv.peer)

    @work(group="verify", exit_on_error=False)
    async def _verify_pending(self, peer: bytes) -> None:
        """Verify a pending key change from its own conversation: the new key's number."""
        from .verify import VerifyScreen

        contact = await self.client.cache.contacts.get(peer)
        if contact is not None and contact.claimed:
            self.app.push_screen(VerifyScreen(self.client, contact.claimed, pending=peer),
                                 lambda _: self._schedule_refresh())

    def action_toggle_dnd(self) -> None:
        on_ = self.tenchat.toggle_dnd()
        self.query_one(StatusBar).dnd = on_
        self.notify("Do not disturb: " + ("on" if on_ else "off"))

    def action_external_editor(self) -> None:
        """The draft in $VISUAL / $EDITOR (vi if neither is set); what is saved comes back
        into the composer. The draft lives in a private temporary file while the editor
        runs, and is deleted right after."""
        from textual.app import SuspendNotSupported

        composer = self.query_one(Composer)
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        fd, name = tempfile.mkstemp(prefix="tenchat-draft-", suffix=".txt")  # mode 0600
        path = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as draft:
                draft.write(composer.text)
            try:
                with self.app.suspend():
                    code = subprocess.call([*shlex.split(editor), str(path)])
            except SuspendNotSupported:
                self.notify("This terminal can't hand over to an editor.", severity="warning")
                return
            except OSError as exc:
                self.notify(f"Could not start {editor}: {exc.strerror}", severity="error")
                return
            if code != 0:
                self.notify(f"{editor} exited with {code}; the draft is unchanged.",
                            severity="warning")
                return
            text = path.read_text(encoding="utf-8").rstrip("\n")
        finally:
            path.unlink(missing_ok=True)
        composer.load_text(text)
        composer.move_cursor(composer.document.end)
        composer.focus()

    def action_focus_composer(self) -> None:
        self.query_one(Composer).focus()

    def action_focus_messages(self) -> None:
        log_widget = self.query_one(MessageLog)
        log_widget.focus()
        if log_widget.selected is None:
            log_widget.select_newest()

    async def action_next_unread(self) -> None:
        """The next conversation (in list order, after the open one) with unread messages."""
        order = self.query_one(ConversationList).peers()
        if self.peer in order:
            i = order.index(self.peer)
            order = order[i + 1:] + order[:i]
        peer = next((p for p in order if (c := self.conversations.get(p)) is not None
                     and c.unread and p != self.peer), None)
        if peer is None:
            self.notify("No unread messages.")
            return
        await self.open_conversation(peer)
        self.query_one(Composer).focus()

    def action_focus_list(self) -> None:
        if self._cancel_compose_mode():
            return
        self.query_one(ConversationList).focus()

    def action_new_group(self) -> None:
        from .new_group import NewGroupScreen

        def created(group: bytes | None) -> None:
            if group is not None:
                self.run_worker(self._start(group))

        self.app.push_screen(NewGroupScreen(self.client), created)

    def action_toggle_members(self) -> None:
        panel = self.query_one(MemberPanel)
        if self.group_info is None:
            self.notify("Open a group to see its members.", severity="warning")
            return
        panel.display = not panel.display
        self.set_class(panel.display, "-members")
        if panel.display:
            panel.query_one("#members").focus()
        else:
            self.query_one(Composer).focus()

    def action_set_timer(self) -> None:
        from .timer import TIMERS, TimerScreen

        conv = self._current()
        if conv is None:
            return
        peer = conv.peer

        def chosen(seconds: int | None) -> None:
            if seconds is not None:
                self.notify(f"Disappearing messages: {dict(TIMERS)[seconds]}")
                self._run_action(self.client.set_timer(peer, seconds))

        self.app.push_screen(TimerScreen(conv.timer), chosen)

    def action_sticker(self) -> None:
        if self.peer is None:
            self.notify("No conversation open.", severity="warning")
            return
        self._pick_sticker(self.peer)

    @work(group="stickers-picker", exclusive=True, exit_on_error=False)
    async def _pick_sticker(self, peer: bytes) -> None:
        from .stickers import StickerScreen

        packs = await self.client.stickers.packs()
        images = {}
        for pack in packs:
            for entry in pack.stickers:
                data = await self.client.cache.stickers.image(entry.ref.hash)
                if data is not None:
                    images[entry.ref.hash] = data

        def chosen(pick: tuple[int, int] | None) -> None:
            if pick is not None:
                pack, index = pick
                self._run_action(self.client.stickers.send(peer, packs[pack], index))

        self.app.push_screen(StickerScreen(packs, images), chosen)

    def action_privacy(self) -> None:
        from .privacy import PrivacyScreen

        self.app.push_screen(PrivacyScreen(self.client))

    def action_feed(self) -> None:
        from .feed import FeedScreen

        self.app.push_screen(FeedScreen(self.client))

    def action_profile(self) -> None:
        from .profile import ProfileScreen

        self.app.push_screen(ProfileScreen(self.client))

    def action_stories(self) -> None:
        from .feed import open_stories

        open_stories(self, self.client)

    def action_attach(self) -> None:
        from .social_actions import attach

        if self.peer is None:
            self.notify("Open a conversation first.", severity="warning")
            return
        attach(self, self.peer, self.query_one(MessageLog).peer_name)

    def _current(self) -> Any:
        if self.peer is None:
            self.notify("No conversation open.", severity="warning")
            return None
        return self.conversations.get(self.peer)
