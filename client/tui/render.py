"""How a message looks: times, day separators, delivery ticks, Markdown and links.

Pure Rich, no Textual, so it is quick to test and to reuse. Time is a parameter
(``tz``, ``today``) so snapshots don't depend on the clock of the machine.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Protocol

from rich.cells import cell_len, set_cell_size
from rich.color import Color
from rich.console import RenderableType
from rich.markdown import Markdown
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from ...common.textsafe import for_terminal

__all__ = ["TICKS", "tick", "local_dt", "day_label", "clock", "body", "preview",
           "plain", "LinkTargetMarkdown", "steady",
           "looks_like_markdown", "half_blocks", "half_block_text", "poll_card", "human_size",
           "attachment_label"]

# pending → sent → delivered → read (cache.PENDING .. cache.READ)
# Read is a different glyph, not only another colour: NO_COLOR terminals tell them apart.
TICKS = {0: ("…", "dim"), 1: ("✓", "dim"), 2: ("✓✓", "dim"), 3: ("◉", "bold")}

_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_MARKDOWN = re.compile(
    r"(\*\*[^*]+\*\*|__[^_]+__|`[^`]+`|^#{1,6} |^\s*[-*+] |^\s*\d+\. |^> |"
    r"\[[^\]]+\]\([^)]+\)|~~[^~]+~~|(?<![\w*])\*[^*\s][^*]*\*(?!\w))",
    re.MULTILINE,
)


def tick(status: int) -> tuple[str, str]:
    """The glyph and its style for an outgoing message's status."""
    return TICKS.get(status, ("?", "dim"))


def local_dt(ms: int, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz)


def clock(ms: int, tz: tzinfo | None) -> str:
    return local_dt(ms, tz).strftime("%H:%M")


def day_label(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day.year == today.year:
        return day.strftime("%A %-d %B")
    return day.strftime("%A %-d %B %Y")


def looks_like_markdown(text: str) -> bool:
    return bool(_MARKDOWN.search(text))


def plain(text: str, style: Style | str = "") -> Text:
    """Peer-controlled text for a widget: a Rich Text (never parsed as Rich/Textual markup,
    so "[b]" or "[@click=...]" in it is just text) with its terminal controls and bidi
    overrides made visible (common.textsafe)."""
    return Text(for_terminal(text), style=style)


def linkify(text: str, base: Style | str = "") -> Text:
    """Plain text with every URL made a terminal hyperlink."""
    text = for_terminal(text)
    out = Text(text, style=base)
    for match in _URL.finditer(text):
        out.stylize(Style(link=match.group(0), underline=True), match.start(), match.end())
    return out


class LinkTargetMarkdown(Markdown):
    """Rich Markdown in which a link can't hide where it goes: ``[your bank](https://evil)``
    shows as "your bank (https://evil)" (still a hyperlink), and an image as its alt text
    and source. Links whose text is their target show once."""

    def __init__(self, markup: str, **kwargs: Any) -> None:
        super().__init__(markup, **kwargs)
        for token in self.parsed:
            if token.children:
                token.children = _with_targets(token.children)


def _with_targets(children: list[Any]) -> list[Any]:
    from markdown_it.token import Token

    out: list[Any] = []
    href, shown = "", ""
    for child in children:
        out.append(child)
        if child.type == "link_open":
            href, shown = str(child.attrs.get("href", "")), ""
        elif child.type in ("text", "code_inline") and href:
            shown += child.content
        elif child.type == "link_close":
            if shown.strip() != href and shown.strip() != href.removeprefix("mailto:"):
                out.append(Token("text", "", 0, content=f" ({href})"))
            href = ""
        elif child.type == "image":
            out.append(Token("text", "", 0, content=f" ({child.attrs.get('src', '')})"))
    return out


def body(text: str) -> RenderableType:
    """A message body: Markdown through Rich when it looks like Markdown (links show their
    real target), else linked text. Either way a Rich renderable, never markup, with terminal
    controls made visible."""
    text = for_terminal(text)
    if looks_like_markdown(text):
        return LinkTargetMarkdown(text, hyperlinks=True, code_theme="ansi_dark")
    return linkify(text)


def human_size(size: int) -> str:
    """12 bytes, 3.4 KB, 12 MB, 1.5 GB (powers of 1024, one decimal below 10)."""
    if size < 1024:
        return f"{size} byte" + ("" if size == 1 else "s")
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def attachment_label(name: str, size: int, mime: str = "") -> str:
    """The line an attachment shows: "📎 beach.png · image · 1.2 MB"."""
    kind = mime.split("/", 1)[0] if mime and not mime.startswith("application/") else ""
    parts = [f"📎 {name or 'file'}"] + ([kind] if kind else []) + [human_size(size)]
    return " · ".join(parts)


# Characters terminals disagree about (with Rich and with each other): skin-tone modifiers
# (tmux and many terminals draw 👋🏽 as two emoji, 4 cells; Rich counts 2) and the emoji
# presentation selector (❤️: Rich counts 1 cell, most terminals draw 2). In a line with
# something drawn after it (the sidebar's divider) they shift that; without them the
# width is the same everywhere.
_UNSTEADY = re.compile("[\U0001F3FB-\U0001F3FF\uFE0F]")


def steady(text: str) -> str:
    """``text`` without the characters whose width terminals disagree about."""
    return _UNSTEADY.sub("", text)


def preview(text: str, width: int) -> str:
    """One line of a message, at most ``width`` cells (conversation list, quotes; terminal
    controls made visible)."""
    line = " ".join(for_terminal(text).split())
    if cell_len(line) <= width:
        return line
    return set_cell_size(line, max(width - 1, 0)).rstrip() + "…"


Cells = list[list[tuple[tuple[int, int, int], tuple[int, int, int]]]]  # imaging.preview_cells


def half_blocks(cells: Cells) -> list[list[Segment]]:
    """An image preview as lines of "▀": the top pixel in front, the bottom one behind."""
    return [[Segment("▀", Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom)))
             for top, bottom in row] for row in cells]


def half_block_text(cells: Cells) -> Text:
    """The same, as one Rich Text (for a Static)."""
    out = Text()
    for i, row in enumerate(half_blocks(cells)):
        if i:
            out.append("\n")
        for seg in row:
            out.append(seg.text, seg.style)
    return out


BAR = 10  # cells of a poll option's bar


class PollLike(Protocol):
    """What a poll card shows (client.polls.PollView has it)."""

    question: str
    options: list[str]
    counts: list[int]
    mine: list[int]
    multiple: bool
    anonymous: bool
    closed: bool
    voters: int


def poll_card(view: PollLike, width: int,
              names: list[list[str]] | None = None) -> list[tuple[str, str]]:
    """A poll as lines of (text, style name): the question, one line per option with its
    count and bar (our choices marked) and, for a named poll, who chose it; then what
    kind of poll it is and whether it is closed."""
    lines = [(preview("📊 " + view.question, width), "question")]
    top = max([*view.counts, 1])
    label_w = max(4, min(max(len(o) for o in view.options), width - BAR - 14))
    for i, option in enumerate(view.options):
        option = " ".join(for_terminal(option).split())
        chosen = i in view.mine
        mark = ("■" if chosen else "□") if view.multiple else ("●" if chosen else "○")
        filled = round(BAR * view.counts[i] / top) if view.counts[i] else 0
        bar = "█" * filled + "░" * (BAR - filled)
        label = option if len(option) <= label_w else option[: label_w - 1] + "…"
        line = f"{mark} {i + 1} {label:<{label_w}} {bar} {view.counts[i]}"
        if names is not None and names[i]:
            line += "  " + ", ".join(names[i])
        cut = line if len(line) <= width else line[: max(width - 1, 0)] + "…"
        lines.append((cut, "chosen" if chosen else "option"))
    kind = ["several choices" if view.multiple else "one choice", f"{view.voters} voted"]
    if view.anonymous:
        kind.append("anonymous")
    kind.append("closed" if view.closed else "v to vote")
    lines.append((preview(" · ".join(kind), width), "meta"))
    return lines
