"""The line above the messages: who, presence, typing, muted/blocked marks."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

__all__ = ["ConversationHeader"]


class ConversationHeader(Static):
    peer_name: reactive[str] = reactive("")
    online: reactive[bool | None] = reactive(None)
    typing: reactive[bool] = reactive(False)
    muted: reactive[bool] = reactive(False)
    pinned: reactive[bool] = reactive(False)
    blocked: reactive[bool] = reactive(False)

    def render(self) -> Text:
        if not self.peer_name:
            return Text("tenchat", "bold")
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f"@{self.peer_name}", "bold")
        if self.online is True:
            out.append("  ● online", "green")
        elif self.online is False:
            out.append("  ○ offline", "dim")
        if self.typing:
            out.append("  typing…", "italic")
        for flag, label in ((self.pinned, "pinned"), (self.muted, "muted"),
                            (self.blocked, "blocked")):
            if flag:
                out.append(f"  [{label}]", "dim")
        return out
