"""The chat screen: conversation list, message pane, composer, status bar, all live.

This module: composing the screen, opening conversations, the widgets' messages and the
client core's events. Its state is chat_base.py, the message decorations chat_media.py,
the key actions chat_actions.py. Over 500 lines (~650): the message handlers of one screen
share its state closely; split further they would only pass it around."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
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
from .chat_actions import ChatActions
from .chat_media import ChatMedia
from .feature_actions import FEATURE_BINDINGS, FeatureActions
from .timer import timer_label

if TYPE_CHECKING:
    pass

__all__ = ["ChatScreen"]

log = logging.getLogger("tenchat.tui")

PAGE = 100  # messages loaded at a time
TYPING_IDLE = 4.0  # seconds without a keypress before we say we stopped typing
TYPING_EXPIRY = 8.0  # a peer's "typing" is dropped after this without news


class ChatScreen(FeatureActions, ChatActions, ChatMedia):
    """Everything a conversation needs on one screen."""

    BINDINGS: ClassVar[list[BindingType]] = [*key_bindings(CHAT_KEYS, footer=True),
                                             *FEATURE_BINDINGS]

    class CoreEvent(Message):
        """An event from the client core, delivered in the screen's message queue."""

        def __init__(self, event: Any) -> None:
            super().__init__()
            self.event = event

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
