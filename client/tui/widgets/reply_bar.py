"""The line above the composer while replying to or editing a message."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

__all__ = ["ReplyBar"]


class ReplyBar(Static):
    """``↳ replying to @bob: first line · Esc cancels``; hidden when there is nothing."""

    text: reactive[str] = reactive("")

    def watch_text(self, text: str) -> None:
        self.display = bool(text)

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(self.text, "italic")
        out.append("  · Esc cancels", "dim")
        return out
