"""The chat screen: conversation list, message pane, composer, status bar, all live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static, TextArea

from ....common.errors import TenchatError
from ...cache import KEY_CHANGED_VERIFIED
from ...conv import is_group, is_user
from ...events import (
    ConnectionChanged,
    ConversationChanged,
    MessageAdded,
    MessageChanged,
    PresenceChanged,
    StatusChanged,
    TypingChanged,
)
from .. import render, slash
from ..bindings import key_bindings
from ..keys import CHAT_KEYS
from ..widgets.composer import Composer
from ..widgets.conversation_header import ConversationHeader
from ..widgets.conversation_list import ConversationList
from ..widgets.key_change_banner import KeyChangeBanner
from ..widgets.member_panel import MemberPanel
from ..widgets.message_log import MessageLog
from ..widgets.reply_bar import ReplyBar
from ..widgets.status_bar import StatusBar
from .feature_actions import FEATURE_BINDINGS, FeatureActions
from .timer import timer_label

if TYPE_CHECKING:
    from ..app import TenchatApp

__all__ = ["ChatScreen", "sticker_cells"]

log = logging.getLogger("tenchat.tui")

PAGE = 100  # messages loaded at a time
STICKER_COLUMNS = 16  # a sticker in the message log: this many cells across, 8 rows at most
THUMB_COLUMNS = 24  # an image attachment's thumbnail: this many cells across, 8 rows at most
THUMB_MAX_BYTES = 5 * 1024 * 1024  # larger images show their 📎 line only (o opens them)
TYPING_IDLE = 4.0  # seconds without a keypress before we say we stopped typing
TYPING_EXPIRY = 8.0  # a peer's "typing" is dropped after this without news


class ChatScreen(FeatureActions, Screen[None]):
    """Everything a conversation needs on one screen."""

    BINDINGS: ClassVar[list[BindingType]] = [*key_bindings(CHAT_KEYS, footer=True),
                                             *FEATURE_BINDINGS]

    class CoreEvent(Message):
        """An event from the client core, delivered in the screen's message queue."""

        def __init__(self, event: Any) -> None:
            super().__init__()
            self.event = event

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.peer: bytes | None = None  # the open conversation
        self.conversations: dict[bytes, Any] = {}
        self._unsubscribe: Any = None
        self._typing_sent = 0.0  # loop time we last told the peer we are typing
        self._typing_idle: Timer | None = None
        # conversation -> who is typing there (the peer, or group members) -> expiry
        self._peer_typing_expiry: dict[bytes, dict[bytes, Timer]] = {}
        self._refresh_pending = False
        # Set once on_mount has opened the first conversation and focused the composer:
        # the app holds keys typed during start-up until then.
        self.ready = asyncio.Event()
        self._ready_focus: Widget | None = None
        self.reply_to: bytes | None = None  # the message the composer answers
        self.editing: bytes | None = None  # our message the composer rewrites
        self.group_info: Any = None  # GroupInfo of the open group
        self.thumbnails: dict[bytes, Any] = {}  # blob hash → thumbnail cells ([]: none)

    @property
    def tenchat(self) -> TenchatApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield ConversationList(id="conversations")
            with Vertical(id="pane"):
                yield ConversationHeader(id="header")
                yield KeyChangeBanner(id="key-change")
                yield MessageLog(id="messages", tz=self.tenchat.tz, today=self.tenchat.today)
                yield ReplyBar(id="reply")
                yield Static(id="slash-hint")
                yield Composer(id="composer")
            yield MemberPanel(id="member-panel")
        yield StatusBar(id="status")

    async def on_mount(self) -> None:
        try:
            self._ready_focus = await self._mount_chat()
        except BaseException:
            self.ready.set()
            raise
        if self.focused is self._ready_focus:
            self.ready.set()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # focus() lands a few messages later: ready once the widget on_mount chose has it
        if event.widget is self._ready_focus:
            self.ready.set()

    async def _mount_chat(self) -> Widget:
        """Fill the screen and open the first conversation; the widget given the focus."""
        status = self.query_one(StatusBar)
        status.identity = self.client.handle
        self.query_one(MessageLog).me_id = self.client.user
        status.dnd = self.tenchat.notifier.do_not_disturb
        self._connection(ConnectionChanged(self.client.connection_state))
        self._unsubscribe = self.client.subscribe(
            lambda event: self.post_message(self.CoreEvent(event)))
        await self.refresh_conversations()
        first = next(iter(self.conversations), None)
        if first is not None:
            await self.open_conversation(first)
            return self.query_one(Composer).focus()
        self.query_one(MessageLog).clear_conversation(
            "No conversations yet. Press Ctrl+N to start one by handle.")
        return self.query_one(ConversationList).focus()

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    # --- conversations ----------------------------------------------------------------------

    async def refresh_conversations(self) -> None:
        conversations = await self.client.conversations()
        try:
            conv_list = self.query_one(ConversationList)
            status = self.query_one(StatusBar)
            self.conversations = {c.peer: c for c in conversations}
            conv_list.update_conversations(conversations)
            status.unread = sum(c.unread for c in conversations if not c.muted)
            self._update_header()
        except NoMatches:
            return  # the app is closing: its widgets went while we were reading

    def _schedule_refresh(self) -> None:
        """Coalesce bursts of events into one list refresh."""
        if not self._refresh_pending:
            self._refresh_pending = True
            self.set_timer(0.05, self._do_refresh)

    # Display refreshes run in the background and may finish after the app began to
    # close (their widgets gone): such a failure must not take the app down with it.
    @work(group="refresh", exclusive=False, exit_on_error=False)
    async def _do_refresh(self) -> None:
        self._refresh_pending = False
        await self.refresh_conversations()

    async def open_conversation(self, peer: bytes, *, focus_key: int | None = None,
                                focus_id: bytes | None = None) -> None:
        """Show a conversation: its latest page, or the page around ``focus_key``."""
        if self.peer is not None and self.peer != peer:
            self._stop_typing()
            self._cancel_compose_mode()
        self.peer = peer
        conv = self.conversations.get(peer)
        group = is_group(peer)
        names: dict[bytes, str] = {}
        self.group_info = None
        if group:
            self.group_info = await self._group_info(peer)
            name = self.group_info.name if self.group_info else (
                conv.title if conv else peer.hex()[:12])
            names = {u: h for u, h in (self.group_info.handles.items()
                                       if self.group_info else ()) if h}
        else:
            name = (conv.handle if conv and conv.handle else None) or \
                await self.client.display_name(peer)
        log_widget = self.query_one(MessageLog)
        log_widget.empty_text = (f"No messages in {name} yet. Say hello below." if group
                                 else f"No messages with @{name} yet. Say hello below.")
        if focus_key is None:
            rows = await self.client.page(peer, limit=PAGE)
            log_widget.show(rows, me=self.client.handle, peer_name=name,
                            has_older=len(rows) == PAGE, group=group, names=names)
        else:
            rows = await self.client.around(peer, focus_key, limit=PAGE)
            keys = [r.key for r in rows]
            after = sum(1 for k in keys if k >= focus_key)
            log_widget.show(rows, me=self.client.handle, peer_name=name,
                            has_older=len(rows) - after >= PAGE // 2,
                            has_newer=after >= PAGE - PAGE // 2, focus_id=focus_id,
                            group=group, names=names)
        await self._decorate(peer, rows)
        self._show_key_change(peer)
        self._show_members()
        self.query_one(ConversationList).set_active(peer)
        self._update_header()
        if conv is not None and conv.unread:
            self._mark_read(peer)

    async def _group_info(self, group: bytes) -> Any:
        try:
            return await self.client.groups.info(group)
        except (TenchatError, OSError) as exc:
            log.info("group info: %s", exc)
            return None

    async def _decorate(self, peer: bytes, rows: list[Any]) -> None:
        """Reactions, "seen by" and replied-to messages of ``rows`` (just shown)."""
        if not rows:
            return
        cache = self.client.cache
        reactions = await cache.messages.reactions(peer, [r.id for r in rows])
        seen = {}
        if is_group(peer):
            for row in rows:
                if row.outgoing:
                    seen[row.id] = await cache.messages.seen_by(peer, row.id)
        log_widget = self.query_one(MessageLog)
        quoted = {}
        for row in rows:
            if row.reply_to and row.reply_to not in quoted and log_widget.row(row.reply_to) \
                    is None:
                target = await cache.messages.get(peer, row.reply_to)
                if target is not None:
                    quoted[row.reply_to] = target
        ids = [r.id for r in rows]
        polls = await self.client.polls.views(peer, ids)
        stickers = await self.client.stickers.refs(peer, ids)
        cells = {}
        for msg_id, sticker in stickers.items():
            cached = await self.client.stickers.cached(sticker)
            if cached is not None:
                cells[msg_id] = await asyncio.to_thread(sticker_cells, cached[1])
            else:
                self._fetch_sticker(peer, msg_id, sticker)
        if peer == self.peer:
            log_widget.decorate(reactions=reactions, seen=seen, quoted=quoted, polls=polls,
                                stickers=cells)
        await self._decorate_attachments(peer, ids)

    async def _decorate_attachments(self, peer: bytes, ids: list[bytes]) -> None:
        """📎 name and size of each attachment in ``ids``; image thumbnails (fetched once,
        hash-checked by the core, kept for the session)."""
        from ...service import attachment_text
        from .social_actions import IMAGE_TYPES

        refs = await self.client.attachments(peer, ids)
        if not refs or peer != self.peer:
            return
        shown = {}
        for msg_id, ref in refs.items():
            label = render.attachment_label(ref.name, ref.size, ref.mime)
            cells = self.thumbnails.get(ref.hash)
            if cells is None and ref.mime in IMAGE_TYPES and ref.size <= THUMB_MAX_BYTES:
                self._fetch_thumbnail(peer, msg_id, ref, label)
            shown[msg_id] = (label, attachment_text(ref, ""), cells or None)
        with contextlib.suppress(NoMatches):  # the app may be closing meanwhile
            self.query_one(MessageLog).decorate(attachments=shown)

    @work(group="thumbnails", exit_on_error=False)
    async def _fetch_thumbnail(self, peer: bytes, msg_id: bytes, ref: Any, label: str) -> None:
        from ...service import attachment_text
        from ..social_view import fetch_blob

        try:
            data = await fetch_blob(self.client, ref)
        except (TenchatError, OSError, ValueError) as exc:
            log.info("thumbnail not shown: %s", exc)
            self.thumbnails[ref.hash] = []
            return
        cells = await asyncio.to_thread(thumbnail_cells, data)
        self.thumbnails[ref.hash] = cells
        if peer == self.peer and cells:
            with contextlib.suppress(NoMatches):  # the app may be closing meanwhile
                self.query_one(MessageLog).decorate(
                    attachments={msg_id: (label, attachment_text(ref, ""), cells)})

    @work(group="key-change", exclusive=True, exit_on_error=False)
    async def _show_key_change(self, peer: bytes) -> None:
        """The banner when the open 1:1 peer is a handle's new identity key (the core
        moves a handle to the key that now signs for it; contacts.key_change)."""
        contact = await self.client.cache.contacts.get(peer) if is_user(peer) else None
        if peer != self.peer:
            return
        banner = self.query_one(KeyChangeBanner)
        if contact is None or not contact.key_change:
            banner.clear()
        else:
            banner.warn(contact.claimed or contact.handle or "?",
                        contact.key_change == KEY_CHANGED_VERIFIED, contact.previous_key)

    @work(group="stickers", exit_on_error=False)
    async def _fetch_sticker(self, peer: bytes, msg_id: bytes, sticker: Any) -> None:
        """A received sticker not fetched yet: fetch and verify it, then show it."""
        try:
            _entry, data = await self.client.stickers.image(sticker)
        except (TenchatError, OSError) as exc:
            log.info("sticker not shown: %s", exc)
            return
        cells = await asyncio.to_thread(sticker_cells, data)
        if peer == self.peer:
            self.query_one(MessageLog).decorate(stickers={msg_id: cells})

    def _show_members(self) -> None:
        panel = self.query_one(MemberPanel)
        if self.group_info is None:
            panel.display = False
            self.remove_class("-members")
            return
        panel.show_group(self.group_info, self.client.user)

    @work(group="group-info", exclusive=True, exit_on_error=False)
    async def _refresh_group(self) -> None:
        peer = self.peer
        if peer is None or not is_group(peer):
            return
        info = await self._group_info(peer)
        if info is None or peer != self.peer:
            return
        self.group_info = info
        log_widget = self.query_one(MessageLog)
        log_widget.names = {u: h for u, h in info.handles.items() if h}
        log_widget.peer_name = info.name
        log_widget.decorate()
        self._show_members()
        self._update_header()

    def _update_header(self) -> None:
        header = self.query_one(ConversationHeader)
        conv = self.conversations.get(self.peer) if self.peer else None
        if self.peer is None:
            header.peer_name = ""
            return
        log_widget = self.query_one(MessageLog)
        group = is_group(self.peer)
        header.group = group
        if group:
            header.peer_name = (self.group_info.name if self.group_info else
                                conv.title if conv else log_widget.peer_name)
            header.members = len(self.group_info.members) if self.group_info else 0
        else:
            header.peer_name = (conv.handle if conv and conv.handle else log_widget.peer_name)
        header.timer = timer_label(conv.timer) if conv and conv.timer else ""
        header.online = conv.online if conv and not group else None
        header.muted = bool(conv and conv.muted)
        header.pinned = bool(conv and conv.pinned)
        header.blocked = bool(conv and conv.blocked)
        header.verified = bool(conv and conv.verified and not group)
        header.typing = self._typing_label(self.peer)

    @work(group="read")
    async def _mark_read(self, peer: bytes) -> None:
        with contextlib.suppress(TenchatError, OSError):
            await self.client.mark_read(peer)

    # --- messages from widgets --------------------------------------------------------------

    @on(ConversationList.Opened)
    async def _opened(self, event: ConversationList.Opened) -> None:
        if event.peer != self.peer:
            await self.open_conversation(event.peer)
        self.query_one(Composer).focus()

    @on(TextArea.Changed, "#composer")
    def _slash_hint(self, event: TextArea.Changed) -> None:
        """Typing a slash command: the commands that match, with their arguments."""
        hint = self.query_one("#slash-hint", Static)
        text = event.text_area.text
        parsed = slash.parse(text) if "\n" not in text else None
        if parsed is None:
            hint.display = False
            return
        name, _args = parsed
        typed_whole = " " in text or "\t" in text
        found = ([slash.COMMANDS[name]] if typed_whole and name in slash.COMMANDS
                 else slash.matching(name))
        if not found:
            hint.update(Text("no such command — /help lists them; // sends a slash"))
        else:  # Text, not markup: "[@handle]" is no tag
            hint.update(Text("   ".join(f"/{c.name} {c.usage}".rstrip() + (
                f" — {c.description}" if len(found) == 1 else "") for c in found[:12])
                + ("   · Tab completes" if not typed_whole else "")))
        hint.display = True

    @on(Composer.Submitted)
    async def _submitted(self, event: Composer.Submitted) -> None:
        command = slash.parse(event.text)
        if command is not None:
            self.query_one("#slash-hint", Static).display = False
            await slash.run(self, *command)
            return
        event.text = slash.unescape(event.text)
        if self.peer is None:
            self.notify("Open a conversation first (Ctrl+N starts one).", severity="warning")
            if not event.composer.text:
                event.composer.load_text(event.text)  # keep what was written
            return
        self._stop_typing()  # the composer has already cleared itself
        editing, reply_to = self.editing, self.reply_to
        try:
            if editing is not None:
                await self.client.edit(self.peer, editing, event.text)
            else:
                await self.client.compose(self.peer, event.text, reply_to=reply_to)
        except TenchatError as exc:
            self.notify(str(exc), severity="error",
                        title="Not saved" if editing else "Not sent")
            if not event.composer.text:
                event.composer.load_text(event.text)  # give the text back to fix and resend
            return
        self.reply_to = self.editing = None
        self.query_one(ReplyBar).text = ""

    def _cancel_compose_mode(self) -> bool:
        """Leave reply or edit mode; whether there was one."""
        was = self.reply_to is not None or self.editing is not None
        if self.editing is not None:
            self.query_one(Composer).clear()
        self.reply_to = self.editing = None
        self.query_one(ReplyBar).text = ""
        return was

    @on(Composer.SelectLast)
    def _select_last(self) -> None:
        log_widget = self.query_one(MessageLog)
        log_widget.focus()
        log_widget.select_newest()

    @on(MessageLog.Selecting)
    def _on_log_selecting(self, event: MessageLog.Selecting) -> None:
        self.query_one(StatusBar).selecting = event.active

    @on(MessageLog.Typed)
    def _typed_while_selecting(self, event: MessageLog.Typed) -> None:
        composer = self.query_one(Composer)
        composer.insert(event.text)
        composer.focus()

    @on(MessageLog.Back)
    def _back_to_composer(self) -> None:
        self.query_one(MessageLog).end_selection()
        self.query_one(Composer).focus()

    @on(MessageLog.Act)
    def _act(self, event: MessageLog.Act) -> None:
        row, log_widget = event.row, event.log
        peer = self.peer
        if peer is None:
            return
        author = log_widget.author(row)
        first = render.preview(row.text, 50) if not row.deleted else "message deleted"
        back = self._back_to_composer  # an action ends selecting; a refusal doesn't
        match event.action:
            case "reply":
                if row.deleted:
                    self.notify("That message was deleted.", severity="warning")
                    return
                self.editing = None
                back()
                self.reply_to = row.id
                self.query_one(ReplyBar).text = f"↳ replying to @{author}: {first}"
                self.query_one(Composer).focus()
            case "edit_message":
                if not row.outgoing or row.deleted:
                    self.notify("You can only edit your own messages.", severity="warning")
                    return
                back()
                self.reply_to = None
                self.editing = row.id
                self.query_one(ReplyBar).text = "✎ editing your message — Enter saves"
                composer = self.query_one(Composer)
                composer.load_text(row.text)
                composer.move_cursor(composer.document.end)
                composer.focus()
            case "react":
                if row.deleted:
                    return
                back()
                from .react import ReactScreen

                def chosen(emoji: str | None) -> None:
                    if emoji:
                        self._run_action(self.client.react(peer, row.id, emoji))

                self.app.push_screen(ReactScreen(), chosen)
            case "delete_message":
                if not row.outgoing or row.deleted:
                    self.notify("You can only delete your own messages.", severity="warning")
                    return
                back()
                from .confirm import ConfirmScreen

                def confirmed(yes: bool | None) -> None:
                    if yes:
                        self._run_action(self.client.delete(peer, row.id))

                self.app.push_screen(ConfirmScreen(
                    f"Delete “{first}” for everyone?"), confirmed)
            case "pin_message":
                if is_group(peer) and (self.group_info is None or
                                        self.group_info.my_role not in ("owner", "admin")):
                    self.notify("Only group admins may pin messages.", severity="warning")
                    return
                back()
                self._run_action(self.client.pin(peer, row.id, not row.pinned))
            case "open_attachment":
                back()
                from .social_actions import open_attachment

                self.run_worker(open_attachment(self, peer, row), group="attachment")
            case "vote":
                poll = log_widget.polls.get(row.id)
                if poll is None or row.deleted:
                    self.notify("That message is not a poll.", severity="warning")
                    return
                if poll.closed:
                    self.notify("This poll is closed.", severity="warning")
                    return
                back()
                from .vote import VoteScreen

                def voted(choices: list[int] | None) -> None:
                    if choices is not None:
                        self._run_action(self.client.polls.vote(peer, row.id, choices))

                self.app.push_screen(VoteScreen(poll), voted)
            case "close_poll":
                poll = log_widget.polls.get(row.id)
                if poll is None or poll.creator != self.client.user or poll.closed:
                    self.notify("You can only close your own open polls.", severity="warning")
                    return
                back()
                from .confirm import ConfirmScreen

                def close(yes: bool | None) -> None:
                    if yes:
                        self._run_action(self.client.polls.close(peer, row.id))

                self.app.push_screen(ConfirmScreen(f"Close the poll “{poll.question}”?"),
                                     close)

    @work(group="actions")
    async def _run_action(self, request: Any) -> None:
        """A message or group action; the core's refusal is shown, not raised."""
        try:
            await request
        except (TenchatError, OSError) as exc:
            self.notify(str(exc), severity="error")

    @on(MemberPanel.Change)
    def _member_change(self, event: MemberPanel.Change) -> None:
        group = self.peer
        if group is None or not is_group(group):
            return
        groups = self.client.groups
        match event.action:
            case "add_member":
                from .new_group import parse_handles

                request = groups.add(group, parse_handles(event.value))
            case "remove_member":
                request = groups.remove(group, [event.handle])
            case "promote":
                request = groups.set_role(group, event.handle, "admin")
            case "demote":
                request = groups.set_role(group, event.handle, "member")
            case "rename":
                request = groups.update(group, name=event.value)
            case "set_topic":
                request = groups.update(group, topic=event.value)
            case "leave":
                request = groups.leave(group)
            case _:
                return
        self._group_change(request)

    @work(group="actions")
    async def _group_change(self, request: Any) -> None:
        try:
            await request
        except (TenchatError, OSError) as exc:
            self.notify(str(exc), severity="error")
            return
        self._refresh_group()
        self._schedule_refresh()

    @on(Composer.Typing)
    def _typing(self) -> None:
        if self.peer is None:
            return
        now = asyncio.get_running_loop().time()
        if now - self._typing_sent > TYPING_IDLE - 1:
            self._typing_sent = now
            self._send_typing(self.peer, True)
        if self._typing_idle is not None:
            self._typing_idle.stop()
        self._typing_idle = self.set_timer(TYPING_IDLE, self._stop_typing)

    def _stop_typing(self) -> None:
        if self._typing_idle is not None:
            self._typing_idle.stop()
            self._typing_idle = None
        if self._typing_sent and self.peer is not None:
            self._typing_sent = 0.0
            self._send_typing(self.peer, False)

    # exclusive: a newer state cancels an older one still waiting, so "stopped" can't
    # overtake "typing" on the way to the peer and leave them looking at "typing…".
    @work(group="typing", exclusive=True)
    async def _send_typing(self, peer: bytes, active: bool) -> None:
        with contextlib.suppress(TenchatError, OSError):
            await self.client.send_typing(peer, active)

    @on(MessageLog.NeedOlder)
    async def _need_older(self, event: MessageLog.NeedOlder) -> None:
        peer = self.peer
        if peer is None:
            return
        rows = await self.client.page(peer, before=event.before, limit=PAGE)
        if peer == self.peer:
            event.log.prepend(rows, has_older=len(rows) == PAGE)
            await self._decorate(peer, rows)

    @on(MessageLog.NeedNewer)
    async def _need_newer(self, event: MessageLog.NeedNewer) -> None:
        peer = self.peer
        if peer is None:
            return
        rows = await self.client.around(peer, event.after + 1, limit=2 * PAGE)
        newer = [r for r in rows if r.key > event.after]
        if peer == self.peer:
            event.log.append_newer(newer, has_newer=len(newer) >= PAGE)
            await self._decorate(peer, newer)

    @on(MessageLog.NeedLatest)
    async def _need_latest(self) -> None:
        if self.peer is not None:
            await self.open_conversation(self.peer)

    # --- events from the client core --------------------------------------------------------

    @on(CoreEvent)
    def _core_event(self, message: CoreEvent) -> None:
        event = message.event
        match event:
            case MessageAdded(message=row):
                self._message_added(row)
            case StatusChanged(peer=peer, ids=ids, status=status):
                if peer == self.peer:
                    self.query_one(MessageLog).set_status(ids, status)
                    if is_group(peer):
                        self._reload_seen(peer, ids)
            case MessageChanged(conv=conv, id=msg_id):
                if conv == self.peer:
                    self._reload_message(conv, msg_id)
                self._schedule_refresh()
            case TypingChanged(peer=peer, active=active, sender=sender):
                self._peer_typing(peer, active, sender)
            case PresenceChanged():
                self._schedule_refresh()
            case ConnectionChanged():
                self._connection(event)
            case ConversationChanged(peer=peer):
                self._schedule_refresh()
                if peer == self.peer and is_user(peer):
                    self._show_key_change(peer)  # verified, or a changed key accepted
                if peer == self.peer:
                    self._drop_expired()
                    if is_group(peer):
                        self._refresh_group()

    @work(group="message-changed", exit_on_error=False)
    async def _reload_message(self, conv: bytes, msg_id: bytes) -> None:
        row = await self.client.cache.messages.get(conv, msg_id)
        if row is None or conv != self.peer:
            return
        reactions = (await self.client.cache.messages.reactions(conv, [msg_id])).get(msg_id, {})
        log_widget = self.query_one(MessageLog)
        log_widget.update_row(row, reactions)
        polls = await self.client.polls.views(conv, [msg_id])
        if polls and conv == self.peer:
            log_widget.decorate(polls=polls)

    @work(group="seen", exit_on_error=False)
    async def _reload_seen(self, group: bytes, ids: list[bytes]) -> None:
        log_widget = self.query_one(MessageLog)
        seen = {}
        for msg_id in ids:
            row = log_widget.row(msg_id)
            if row is not None and row.outgoing:
                seen[msg_id] = await self.client.cache.messages.seen_by(group, msg_id)
        if seen and group == self.peer:
            log_widget.decorate(seen=seen)

    def _drop_expired(self) -> None:
        """Disappearing messages whose time is up (the core has deleted them)."""
        now = int(time.time() * 1000)
        log_widget = self.query_one(MessageLog)
        log_widget.remove_rows([r.id for r in log_widget.rows if r.expires_at and
                           r.expires_at <= now])

    def _message_added(self, row: Any) -> None:
        if self.peer is None:  # nothing open yet: show the first conversation that starts
            self.peer = row.peer
            self.run_worker(self.open_conversation(row.peer))
            self.query_one(Composer).focus()
        in_view = row.peer == self.peer and self.app.screen is self
        if row.peer == self.peer:
            log_widget = self.query_one(MessageLog)
            log_widget.add(row)
            # Quotes, poll cards and sticker pictures need more than the row itself.
            if row.reply_to is not None or row.text.startswith(("[poll] ", "[sticker: ")):
                self.run_worker(self._decorate(row.peer, [row]))
            else:  # an attachment's caption looks like any text: ask the cache
                self.run_worker(self._decorate_attachments(row.peer, [row.id]),
                                group="attachments", exit_on_error=False)
            if log_widget.group and row.sender and row.sender not in log_widget.names:
                self._refresh_group()  # a new member's first message
        if not row.outgoing:
            self._peer_typing(row.peer, False, row.sender)
            if row.peer == self.peer:
                self._mark_read(row.peer)
            conv = self.conversations.get(row.peer)
            if conv is not None and conv.is_group:
                author = self.query_one(MessageLog).names.get(row.sender, "") \
                    if row.peer == self.peer else ""
                title = f"{conv.title}: @{author}" if author else conv.title
            else:
                title = f"@{conv.handle}" if conv and conv.handle else "@someone"
            self.tenchat.notifier.message(title, row.text, in_view=in_view,
                                          muted=bool(conv and conv.muted),
                                          mention=row.mention)
        self._schedule_refresh()

    def _peer_typing(self, peer: bytes, active: bool, sender: bytes | None = None) -> None:
        """``sender`` (the peer itself in a 1:1 chat) started or stopped typing in ``peer``;
        an indicator nobody renews goes out by itself after TYPING_EXPIRY."""
        who = sender or peer
        typers = self._peer_typing_expiry.setdefault(peer, {})
        old = typers.pop(who, None)
        if old is not None:
            old.stop()
        if active:
            typers[who] = self.set_timer(
                TYPING_EXPIRY, lambda: self._peer_typing(peer, False, sender))
        elif not typers:
            del self._peer_typing_expiry[peer]
        self.query_one(ConversationList).set_typing(peer, bool(typers))
        if peer == self.peer:
            self.query_one(ConversationHeader).typing = self._typing_label(peer)

    def _typing_label(self, peer: bytes) -> str:
        """"typing…" in a 1:1 chat; in a group who: one or two names, else how many."""
        typers = self._peer_typing_expiry.get(peer)
        if not typers:
            return ""
        if not is_group(peer):
            return "typing…"
        names = self.query_one(MessageLog).names
        handles = [f"@{names[u]}" if names.get(u) else "someone" for u in typers]
        if len(handles) == 1:
            return f"{handles[0]} is typing…"
        if len(handles) == 2:
            return f"{handles[0]} and {handles[1]} are typing…"
        return f"{len(handles)} people are typing…"

    def _connection(self, event: ConnectionChanged) -> None:
        status = self.query_one(StatusBar)
        status.state = event.state
        status.error = event.error
        status.retry_at = (asyncio.get_running_loop().time() + event.retry_in
                           if event.retry_in is not None else None)
        if event.state == "online":
            self._schedule_refresh()

    # --- actions (keys and command palette) -------------------------------------------------

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


def thumbnail_cells(data: bytes) -> Any:
    """An image attachment's thumbnail for the message log; [] if unreadable."""
    from ...imaging import ImageError, preview_cells

    try:
        return preview_cells(data, THUMB_COLUMNS, max_rows=8)
    except ImageError:
        return []


def sticker_cells(data: bytes) -> Any:
    """A sticker's picture for the message log (imaging.preview_cells); [] if unreadable."""
    from ...imaging import ImageError, preview_cells

    try:
        return preview_cells(data, STICKER_COLUMNS, max_rows=8)
    except ImageError:
        return []
