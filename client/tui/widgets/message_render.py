"""How the message pane (message_log.py) draws one message: name column, time, status
ticks, quoted reply, text (markdown), poll card, sticker or thumbnail, and the line of
reactions, "edited", the pin and "seen by". Each message becomes a block of strips that
MessageLog caches by everything that changes its look."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, tzinfo
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .. import render

__all__ = ["MessageRendering", "NAME_WIDTH"]

NAME_WIDTH = 10  # handles longer than this are cut in the name column


class MessageRendering(ScrollView):
    """The drawing half of MessageLog, whose state (set in its __init__) this reads."""

    tz: tzinfo | None
    today: Callable[[], date]
    me: str
    me_id: bytes | None
    peer_name: str
    rows: list[Any]
    highlight_id: bytes | None
    selected_id: bytes | None
    group: bool
    names: dict[bytes, str]
    reactions: dict[bytes, dict[str, int]]
    seen: dict[bytes, int]
    quoted: dict[bytes, Any]
    polls: dict[bytes, Any]
    stickers: dict[bytes, Any]
    attachments: dict[bytes, tuple[str, str, Any]]

    window: int
    empty_text: str
    follow: bool
    new_below: int
    _lines: list[Strip]
    _starts: dict[bytes, int]  # message id → its first line
    _blocks: dict[tuple[Any, ...], list[Strip]]  # rendered messages, by all they show
    _width: int

    if TYPE_CHECKING:  # MessageLog's
        def author(self, row: Any) -> str: ...
        def row(self, msg_id: bytes | None) -> Any: ...

    def _poll_key(self, msg_id: bytes) -> tuple[Any, ...] | None:
        view = self.polls.get(msg_id)
        if view is None:
            return None
        return (tuple(view.counts), tuple(view.mine), view.closed, view.voters,
                tuple(tuple(n) for n in view.names) if view.names is not None else None)

    def _voter_names(self, view: Any) -> list[list[str]] | None:
        if view.names is None:
            return None
        return [[self.me if u == self.me_id else self.names.get(u, self.peer_name or "?")
                 for u in who] for who in view.names]

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"message-log--{name}", partial=True)

    def _day_rule(self, label: str, width: int) -> Strip:
        text = f" {label} "
        side = max((width - len(text)) // 2, 1)
        rule = self._style("rule")
        segments = [Segment("─" * side, rule), Segment(text, self._style("day")),
                    Segment("─" * max(width - side - len(text), 0), rule)]
        return Strip(segments).crop_extend(0, width, None)

    def _quote(self, row: Any) -> str | None:
        """``@name: first line`` of the message ``row`` replies to (None: not a reply)."""
        if row.reply_to is None:
            return None
        target = self.row(row.reply_to) or self.quoted.get(row.reply_to)
        if target is None:
            return "a message not loaded"
        text = "message deleted" if target.deleted else (target.text.strip().splitlines()
                                                          or [""])[0]
        return f"@{self.author(target)}: {text}"

    def _meta(self, row: Any) -> str:
        """The line under a message: reactions, edited, pinned, seen by."""
        parts = []
        reactions = self.reactions.get(row.id)
        if reactions:
            parts.append("  ".join(f"{emoji} {n}" for emoji, n in reactions.items()))
        if row.edited and not row.deleted:
            parts.append("edited")
        if row.pinned:
            parts.append("📌 pinned")
        if self.group and row.outgoing and self.seen.get(row.id):
            parts.append(f"seen by {self.seen[row.id]}")
        if row.expires_at:
            parts.append("⏱")
        return " · ".join(parts)

    def _render_message(self, row: Any, width: int, name_w: int,
                        quote: str | None) -> list[Strip]:
        own = row.outgoing
        name = self.author(row)
        name = name if len(name) <= name_w else name[: name_w - 1] + "…"
        glyph, _ = render.tick(row.status) if own else ("", "")
        tick_style = self._style("read" if own and row.status >= 3 else "tick")
        selected = row.id == self.selected_id
        marker = Segment("▌", self._style("selected")) if selected else Segment(" ")
        prefix = [
            Segment(render.clock(row.sent_at, self.tz), self._style("time")),
            Segment(" "),
            Segment(f"{glyph:<2}", tick_style),
            marker,
            Segment(f"{name:>{name_w}}", self._style("me" if own else "peer")),
            Segment(" │ ", self._style("rule")),
        ]
        prefix_w = sum(s.cell_length for s in prefix)
        blank = [Segment(" " * (prefix_w - 4 - name_w)), marker,
                 Segment(" " * (name_w + 1)), Segment("│ ", self._style("rule"))]
        body_w = max(width - prefix_w, 10)
        console = self.app.console
        options = console.options.update(width=body_w, height=None, highlight=False)
        style = None
        if row.id == self.highlight_id:
            style = self._style("highlight")
        elif row.mention and not own:
            style = self._style("mention")
        lines: list[list[Segment]] = []
        if quote is not None:
            text = render.preview("↳ " + quote, body_w)
            lines.append([Segment(text, self._style("quote"))])
        poll = self.polls.get(row.id)
        cells = self.stickers.get(row.id)
        if row.deleted:
            lines.append([Segment("message deleted", self._style("deleted"))])
        elif poll is not None:
            styles = {"question": "poll-question", "option": "poll-option",
                      "chosen": "poll-chosen", "meta": "meta"}
            for text, kind in render.poll_card(poll, body_w, self._voter_names(poll)):
                lines.append([Segment(text, self._style(styles[kind]))])
        else:
            attachment = self.attachments.get(row.id)
            if attachment is not None:
                lines.append([Segment(render.preview(attachment[0], body_w),
                                      self._style("attachment"))])
            body_lines = [] if attachment is not None and row.text == attachment[1] else \
                console.render_lines(render.body(row.text), options, style=style,
                                     pad=False, new_lines=False)
            while len(body_lines) > 1 and not "".join(s.text for s in body_lines[-1]).strip():
                body_lines.pop()
            while len(body_lines) > 1 and not "".join(s.text for s in body_lines[0]).strip():
                body_lines.pop(0)
            if body_lines or attachment is None:
                lines.extend(body_lines or [[]])
            if cells:
                lines.extend(render.half_blocks(cells))
            if attachment is not None and attachment[2]:
                lines.extend(render.half_blocks(attachment[2]))
        meta = self._meta(row)
        if meta:
            lines.append([Segment(render.preview(meta, body_w), self._style("meta"))])
        strips = []
        for i, line in enumerate(lines):
            segments = (prefix if i == 0 else blank) + list(line)
            strips.append(Strip(segments).crop_extend(0, width, None))
        return strips

    def _relayout(self) -> None:
        if not self._component_styles:  # not styled yet (or gone): on_resize lays it out
            return
        width = max(self.scrollable_content_region.width, 20)
        if width != self._width:
            self._blocks.clear()
            self._width = width
        lines: list[Strip] = []
        starts: dict[bytes, int] = {}
        today = self.today()
        previous_day: date | None = None
        if self.group:
            widest = max((len(self.author(r)) for r in self.rows), default=0)
            name_w = min(NAME_WIDTH, max(widest, len(self.me), 3))
        else:
            name_w = min(NAME_WIDTH, max(len(self.me), len(self.peer_name), 3))
        for row in self.rows:
            day = render.local_dt(row.sent_at, self.tz).date()
            if day != previous_day:
                lines.append(self._day_rule(render.day_label(day, today), width))
                previous_day = day
            starts[row.id] = len(lines)
            quote = self._quote(row)
            key = (row, width, name_w, row.id == self.highlight_id,
                   row.id == self.selected_id, self.author(row), quote,
                   tuple(self.reactions.get(row.id, {}).items()), self.seen.get(row.id),
                   self._poll_key(row.id), id(self.stickers.get(row.id)),
                   id(self.attachments.get(row.id)))
            block = self._blocks.get(key)
            if block is None:
                block = self._render_message(row, width, name_w, quote)
                self._blocks[key] = block
            lines.extend(block)
        if len(self._blocks) > 4 * self.window:
            self._blocks.clear()
        self._lines = lines
        self._starts = starts
        self.virtual_size = Size(width, len(lines))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        if not self.rows and y == 0:
            text = Strip([Segment(self.empty_text, self._style("empty"))])
            return text.apply_style(base).crop_extend(0, width, base)
        if self.new_below and not self.follow and y == self.scrollable_content_region.height - 1:
            label = f" ↓ {self.new_below} new · End "
            pad = max(width - cell_len(label), 0)
            return Strip([Segment(" " * pad, base),
                          Segment(label, base + self._style("selected") + Style(reverse=True))])
        index = scroll_y + y
        if index >= len(self._lines):
            return Strip.blank(width, base)
        strip = self._lines[index].apply_style(base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)
