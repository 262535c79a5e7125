"""How a message looks: times, day separators, delivery ticks, Markdown and links.

Pure Rich, no Textual, so it is quick to test and to reuse. Time is a parameter
(``tz``, ``today``) so snapshots don't depend on the clock of the machine.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo

from rich.console import RenderableType
from rich.markdown import Markdown
from rich.style import Style
from rich.text import Text

__all__ = ["TICKS", "tick", "local_dt", "day_label", "clock", "body", "preview",
           "looks_like_markdown"]

# pending → sent → delivered → read (cache.PENDING .. cache.READ)
TICKS = {0: ("…", "dim"), 1: ("✓", "dim"), 2: ("✓✓", "dim"), 3: ("✓✓", "bold")}

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


def linkify(text: str, base: Style | str = "") -> Text:
    """Plain text with every URL made a terminal hyperlink."""
    out = Text(text, style=base)
    for match in _URL.finditer(text):
        out.stylize(Style(link=match.group(0), underline=True), match.start(), match.end())
    return out


def body(text: str) -> RenderableType:
    """A message body: Markdown through Rich when it looks like Markdown, else linked text."""
    if looks_like_markdown(text):
        return Markdown(text, hyperlinks=True, code_theme="ansi_dark")
    return linkify(text)


def preview(text: str, width: int) -> str:
    """One line of a message for the conversation list."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"
