"""The message pane: one Line API widget rendering a bounded window of a conversation.

A little over 500 lines (~515): the window, the selection and the scroll keys are one
widget's state; how a message turns into lines is message_render.py already.

It never mounts a widget per message. It holds at most ``window`` messages,
renders them to lines at the current width (cached per message), and asks for
older or newer pages with :class:`MessageLog.NeedOlder` / :class:`MessageLog.NeedNewer`
as the user scrolls near an edge; the window is trimmed at the far end.

In a group each message carries its author's handle; replies show a quoted first
line of the message they answer, and a line under a message lists its reactions,
"edited", the pin and, for our group messages, "seen by N". A poll shows as a card
(options, counts, bars, our vote); a sticker as a half-block picture. Up/Down move a
selection cursor; the keys of :data:`keys.MESSAGE_KEYS` act on the selected message
by posting :class:`MessageLog.Act`. Selecting is a mode (:class:`MessageLog.Selecting`
tells the screen, which shows it): it ends when the focus leaves, Esc goes back to the
composer, and any other printable key is typed there (:class:`MessageLog.Typed`).

The log follows new messages while it is at the bottom (on open, on send, on resize, after
a message taller than the pane); scrolled up, it counts what arrived below ("↓ 3 new").
Drawing (a message to lines, the lines to the screen) is message_render.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, tzinfo
from typing import Any

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip

from ..keys import LOG_KEYS, MESSAGE_KEYS
from .message_render import MessageRendering

__all__ = ["MessageLog"]

_NOWHERE = object()  # no placement pending
EDGE = 2  # lines from the top/bottom edge that trigger loading the next page


class MessageLog(MessageRendering, can_focus=True):
    """A window of one conversation's messages, oldest at the top."""

    BINDINGS = [Binding(spec.key, spec.id, spec.description, id=spec.id, show=False)
                for spec in LOG_KEYS + MESSAGE_KEYS]
    # Every key here may move the focus (an action, Esc and typing go back to the composer):
    # the app lets each one settle before handing out the next (TenchatApp.on_event).
    HOLDS_KEYS = True

    COMPONENT_CLASSES = {
        "message-log--time",
        "message-log--me",
        "message-log--peer",
        "message-log--rule",
        "message-log--day",
        "message-log--tick",
        "message-log--read",
        "message-log--highlight",
        "message-log--empty",
        "message-log--selected",
        "message-log--quote",
        "message-log--meta",
        "message-log--deleted",
        "message-log--mention",
        "message-log--poll-question",
        "message-log--poll-option",
        "message-log--poll-chosen",
        "message-log--attachment",
    }

    class Act(Message):
        """A key for the selected message: ``action`` is a MESSAGE_KEYS id."""

        def __init__(self, log: MessageLog, action: str, row: Any) -> None:
            super().__init__()
            self.log = log
            self.action = action
            self.row = row

    class NeedOlder(Message):
        """Scrolled near the top of the window: load messages before ``before``."""

        def __init__(self, log: MessageLog, before: int) -> None:
            super().__init__()
            self.log = log
            self.before = before

    class NeedNewer(Message):
        """Scrolled near the bottom of a window that is not the latest: load after ``after``."""

        def __init__(self, log: MessageLog, after: int) -> None:
            super().__init__()
            self.log = log
            self.after = after

    class Selecting(Message):
        """Selection mode began (the log got the focus) or ended."""

        def __init__(self, log: MessageLog, active: bool) -> None:
            super().__init__()
            self.log = log
            self.active = active

    class Typed(Message):
        """A printable key while selecting: it belongs in the composer."""

        def __init__(self, log: MessageLog, text: str) -> None:
            super().__init__()
            self.log = log
            self.text = text

    class Back(Message):
        """Esc while selecting: back to the composer."""

        def __init__(self, log: MessageLog) -> None:
            super().__init__()
            self.log = log

    class NeedLatest(Message):
        """The user asked for the latest messages while the window holds older ones."""

        def __init__(self, log: MessageLog) -> None:
            super().__init__()
            self.log = log

    def __init__(self, *, tz: tzinfo | None = None, today: Callable[[], date] | None = None,
                 window: int = 400, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.tz = tz
        self.today = today or (lambda: datetime.now(tz).date())
        self.window = window
        self.me = ""
        self.me_id: bytes | None = None  # our user id (to name our own votes)
        self.peer_name = ""
        self.rows: list[Any] = []  # MessageRow, oldest first
        self.has_older = False
        self.has_newer = False
        self.paging = False  # a page request is in flight (not Widget.loading)
        self.highlight_id: bytes | None = None
        self.selected_id: bytes | None = None  # the message the action keys act on
        self.group = False  # a group: name each message's author
        self.names: dict[bytes, str] = {}  # group members' user id → handle
        self.reactions: dict[bytes, dict[str, int]] = {}  # message id → {emoji: count}
        self.seen: dict[bytes, int] = {}  # our group message id → members who read it
        self.quoted: dict[bytes, Any] = {}  # replied-to messages outside the window
        self.polls: dict[bytes, Any] = {}  # poll message id → client.polls.PollView
        self.stickers: dict[bytes, Any] = {}  # sticker message id → imaging.preview_cells
        # attachment message id → (its 📎 line, the text it shows without a caption,
        # thumbnail cells of an image or None)
        self.attachments: dict[bytes, tuple[str, str, Any]] = {}
        self.empty_text = "No conversation open. Ctrl+N starts one."
        self._lines: list[Strip] = []
        self._starts: dict[bytes, int] = {}  # message id → its first line
        self._blocks: dict[tuple[Any, ...], list[Strip]] = {}
        self._width = 0
        self._pending_place: Any = _NOWHERE
        self.follow = True  # at the bottom: new messages, resizes and sends keep it there
        self.new_below = 0  # messages that arrived below while scrolled up

    # --- content --------------------------------------------------------------------------

    def show(self, rows: Sequence[Any], *, me: str, peer_name: str, has_older: bool,
             has_newer: bool = False, focus_id: bytes | None = None,
             group: bool = False, names: dict[bytes, str] | None = None) -> None:
        """Replace the window; scroll to ``focus_id`` (highlighted) or to the end."""
        self.me, self.peer_name = me, peer_name
        self.group, self.names = group, dict(names or {})
        self.rows = list(rows)
        self.has_older, self.has_newer = has_older, has_newer
        self.paging = True  # no paging until the first scroll position is set
        self.highlight_id = focus_id
        self.selected_id = None
        self.reactions, self.seen, self.quoted = {}, {}, {}
        self.polls, self.stickers, self.attachments = {}, {}, {}
        self.follow = focus_id is None and not has_newer
        self.new_below = 0
        self._blocks.clear()
        self._relayout()
        if self.size.height:
            self._place(focus_id, True)
        else:  # not laid out yet: place it on the first resize
            self._pending_place = focus_id

    def _place(self, focus_id: bytes | None, done: bool = False) -> None:
        self._pending_place = _NOWHERE
        if focus_id is not None and focus_id in self._starts:
            y = max(self._starts[focus_id] - self.scrollable_content_region.height // 2, 0)
            self.scroll_to(y=y, animate=False, immediate=True)
        else:
            self.scroll_end(animate=False, immediate=True)
        if done:
            self.paging = False
            self._maybe_fill()

    def clear_conversation(self, text: str | None = None) -> None:
        self.rows, self.has_older, self.has_newer = [], False, False
        self.selected_id = None
        if text is not None:
            self.empty_text = text
        self._relayout()

    def add(self, row: Any) -> None:
        """A new message (live): appended when the window holds the latest messages."""
        if self.has_newer:
            return  # the user is reading older history; it is there when they come back
        if any(r.id == row.id for r in self.rows[-50:]):
            return
        if row.outgoing:
            self.follow = True  # what we send is shown, wherever we were
        self.rows.append(row)
        if len(self.rows) > self.window:
            self._trim_top(len(self.rows) - self.window)
        if not self.follow:
            self.new_below += 1
        self._relayout()
        if self.follow:
            self._to_bottom()

    def _to_bottom(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        self.follow, self.new_below = True, 0

    def set_status(self, ids: Iterable[bytes], status: int) -> None:
        wanted = set(ids)
        changed = False
        for i, row in enumerate(self.rows):
            if row.id in wanted and row.outgoing and row.status < status:
                self.rows[i] = _with_status(row, status)
                changed = True
        if changed:
            self._relayout()

    def decorate(self, *, reactions: dict[bytes, dict[str, int]] | None = None,
                 seen: dict[bytes, int] | None = None,
                 quoted: dict[bytes, Any] | None = None,
                 polls: dict[bytes, Any] | None = None,
                 stickers: dict[bytes, Any] | None = None,
                 attachments: dict[bytes, tuple[str, str, Any]] | None = None) -> None:
        """Reactions, "seen by" counts, replied-to messages, poll states, sticker
        pictures and attachments (📎 line, thumbnail) for rows in the window."""
        self.reactions.update(reactions or {})
        self.seen.update(seen or {})
        self.quoted.update(quoted or {})
        self.polls.update(polls or {})
        self.stickers.update(stickers or {})
        self.attachments.update(attachments or {})
        self._relayout()
        # a picture or a card makes messages taller: a log that follows stays at the end
        if self.follow and self._pending_place is _NOWHERE:
            self._to_bottom()
            self.call_after_refresh(self._follow_after_layout)

    def _follow_after_layout(self) -> None:
        if self.follow:
            self._to_bottom()

    def update_row(self, row: Any, reactions: dict[str, int] | None = None) -> bool:
        """A message changed (edited, deleted, pinned, reacted to); False if not shown."""
        for i, old in enumerate(self.rows):
            if old.id == row.id:
                self.rows[i] = row
                self.reactions[row.id] = reactions or {}
                self._relayout()
                return True
        if row.id in self.quoted:
            self.quoted[row.id] = row
            self._relayout()
        return False

    def remove_rows(self, ids: Iterable[bytes]) -> None:
        """Messages that are gone (disappeared). (Not ``remove``: that is Widget's, which
        takes the widget itself out of the DOM.)"""
        gone = set(ids)
        if any(r.id in gone for r in self.rows):
            self.rows = [r for r in self.rows if r.id not in gone]
            if self.selected_id in gone:
                self.selected_id = None
            self._relayout()

    def row(self, msg_id: bytes | None) -> Any:
        return next((r for r in self.rows if r.id == msg_id), None) if msg_id else None

    @property
    def selected(self) -> Any:
        return self.row(self.selected_id)

    def author(self, row: Any) -> str:
        """Who wrote ``row``, as shown in the name column."""
        if row.outgoing:
            return self.me
        if self.group:
            return self.names.get(row.sender, "?") if row.sender else "?"
        return self.peer_name

    def prepend(self, rows: Sequence[Any], *, has_older: bool) -> None:
        """Older messages, loaded for the top; keeps what the user looks at in place."""
        self.paging = False
        self.has_older = has_older
        known = {r.id for r in self.rows}
        rows = [r for r in rows if r.id not in known]
        if not rows:
            self._relayout()
            return
        anchor = self.rows[0].id if self.rows else None
        old_start = self._starts.get(anchor, 0) if anchor is not None else 0
        self.rows[:0] = rows
        if len(self.rows) > self.window:
            del self.rows[self.window:]
            self.has_newer = True
        y = self.scroll_y
        self._relayout()
        delta = self._starts.get(anchor, 0) - old_start if anchor is not None else 0
        self.scroll_to(y=y + delta, animate=False, immediate=True)

    def append_newer(self, rows: Sequence[Any], *, has_newer: bool) -> None:
        """Newer messages, loaded for the bottom after scrolling through old history."""
        self.paging = False
        self.has_newer = has_newer
        known = {r.id for r in self.rows}
        rows = [r for r in rows if r.id not in known]
        self.rows.extend(rows)
        y = self.scroll_y
        dropped = 0
        if len(self.rows) > self.window:
            first_kept = self.rows[len(self.rows) - self.window].id
            dropped = self._starts.get(first_kept, 0)
            self._trim_top(len(self.rows) - self.window)
        self._relayout()
        self.scroll_to(y=max(y - dropped, 0), animate=False, immediate=True)

    def _trim_top(self, count: int) -> None:
        del self.rows[:count]
        self.has_older = True

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def wrap_width(self) -> int:
        """The width the lines are wrapped to (20 until the widget is first laid out)."""
        return self._width

    # --- actions --------------------------------------------------------------------------

    def action_oldest(self) -> None:
        self.scroll_home(animate=False)

    def action_latest(self) -> None:
        self.selected_id = None
        self._relayout()
        if self.has_newer:
            self.post_message(self.NeedLatest(self))
        else:
            self._to_bottom()

    def action_back(self) -> None:
        self.post_message(self.Back(self))

    def select_newest(self) -> None:
        """Select the newest message in the window (Up from an empty composer)."""
        self.selected_id = None
        if self.rows:
            self._select_index(len(self.rows) - 1, 0)

    def end_selection(self) -> None:
        if self.selected_id is not None:
            self.selected_id = None
            self._relayout()

    def on_focus(self) -> None:
        self.post_message(self.Selecting(self, True))

    def on_blur(self) -> None:
        self.end_selection()
        self.post_message(self.Selecting(self, False))

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character and \
                event.key not in self._bindings.key_to_bindings:
            event.stop()
            event.prevent_default()
            self.post_message(self.Typed(self, event.character))

    def action_scroll_older(self) -> None:
        self._select(-1)

    def action_scroll_newer(self) -> None:
        self._select(1)

    def action_page_older(self) -> None:
        self.scroll_page_up(animate=False)

    def action_page_newer(self) -> None:
        self.scroll_page_down(animate=False)

    def _select(self, step: int) -> None:
        """Move the selection one message; the first press selects the newest shown."""
        if not self.rows:
            return
        ids = [r.id for r in self.rows]
        if self.selected_id in ids:
            index = min(max(ids.index(self.selected_id) + step, 0), len(ids) - 1)
        else:
            index = len(ids) - 1
            visible = [i for i, r in enumerate(self.rows)
                       if self._starts.get(r.id, 0) < self.scroll_y + self.size.height]
            if visible:
                index = visible[-1]
        self._select_index(index, step)

    def _select_index(self, index: int, step: int) -> None:
        ids = [r.id for r in self.rows]
        self.selected_id = ids[index]
        self._relayout()
        self._reveal(self.selected_id)
        if index == 0 and step < 0 and self.has_older and not self.paging:
            self.paging = True
            self.post_message(self.NeedOlder(self, self.rows[0].key))
        elif index == len(ids) - 1 and step > 0 and self.has_newer and not self.paging:
            self.paging = True
            self.post_message(self.NeedNewer(self, self.rows[-1].key))

    def _reveal(self, msg_id: bytes) -> None:
        start = self._starts.get(msg_id)
        if start is None:
            return
        ids = [r.id for r in self.rows]
        i = ids.index(msg_id)
        end = self._starts[ids[i + 1]] if i + 1 < len(ids) else len(self._lines)
        height = self.scrollable_content_region.height
        if start < self.scroll_y:
            self.scroll_to(y=start, animate=False, immediate=True)
        elif end > self.scroll_y + height:
            self.scroll_to(y=max(end - height, start if end - start > height else 0),
                           animate=False, immediate=True)

    def _act(self, action: str) -> None:
        row = self.selected
        if row is None:
            self.notify("Select a message first (Up/Down in the messages).",
                        severity="warning")
            return
        self.post_message(self.Act(self, action, row))

    def action_reply(self) -> None:
        self._act("reply")

    def action_react(self) -> None:
        self._act("react")

    def action_edit_message(self) -> None:
        self._act("edit_message")

    def action_delete_message(self) -> None:
        self._act("delete_message")

    def action_pin_message(self) -> None:
        self._act("pin_message")

    def action_open_attachment(self) -> None:
        self._act("open_attachment")

    def action_vote(self) -> None:
        self._act("vote")

    def action_close_poll(self) -> None:
        self._act("close_poll")

    # --- paging triggers ------------------------------------------------------------------

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.rows and self.size.height and self._pending_place is _NOWHERE:
            at_end = new >= self.max_scroll_y and not self.has_newer
            if at_end != self.follow or (at_end and self.new_below):
                self.follow = at_end
                if at_end:
                    self.new_below = 0
                self.refresh()
        self._check_edges()

    def _check_edges(self) -> None:
        if self.paging or not self.rows:
            return
        if self.has_older and self.scroll_y <= EDGE:
            self.paging = True
            self.post_message(self.NeedOlder(self, self.rows[0].key))
        elif self.has_newer and self.scroll_y >= self.max_scroll_y - EDGE:
            self.paging = True
            self.post_message(self.NeedNewer(self, self.rows[-1].key))

    def _maybe_fill(self) -> None:
        """Too few lines to scroll: load older ones so the pane fills up."""
        if self.has_older and not self.paging and self.rows and (
            len(self._lines) <= self.scrollable_content_region.height
        ):
            self.paging = True
            self.post_message(self.NeedOlder(self, self.rows[0].key))

    # --- layout ---------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._relayout()
        if self._pending_place is not _NOWHERE and self.size.height:
            self._place(self._pending_place, True)
        elif self.follow:
            self._to_bottom()

def _with_status(row: Any, status: int) -> Any:
    from dataclasses import replace

    return replace(row, status=status)
