"""The line above the messages: who (or which group), presence, typing, timer, marks."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ....common.textsafe import for_name

__all__ = ["ConversationHeader"]


class ConversationHeader(Static):
    peer_name: reactive[str] = reactive("")
    online: reactive[bool | None] = reactive(None)
    typing: reactive[str] = reactive("")  # "typing…", "@ann and @bo are typing…", ""
    muted: reactive[bool] = reactive(False)
    pinned: reactive[bool] = reactive(False)
    blocked: reactive[bool] = reactive(False)
    group: reactive[bool] = reactive(False)  # peer_name is then the group's name
    members: reactive[int] = reactive(0)
    timer: reactive[str] = reactive("")  # disappearing messages, e.g. "5m"; "" off
    verified: reactive[bool] = reactive(False)  # we marked the peer's safety number

    def render(self) -> Text:
        if not self.peer_name:
            return Text("tenchat", "bold")
        out = Text(no_wrap=True, overflow="ellipsis")
        if self.group:
            out.append(f"# {for_name(self.peer_name)}", "bold")  # a group's name
            out.append(f"  {self.members} members", "dim")
        else:
            out.append(f"@{self.peer_name}", "bold")
            if self.verified:
                out.append(" ✔", "bold green")
        if self.timer:
            out.append(f"  ⏱ {self.timer}", "")
        if self.online is True:
            out.append("  ● online", "green")
        elif self.online is False:
            out.append("  ○ offline", "dim")
        if self.typing:
            out.append(f"  {self.typing}", "italic")
        for flag, label in ((self.pinned, "pinned"), (self.muted, "muted"),
                            (self.blocked, "blocked")):
            if flag:
                out.append(f"  [{label}]", "dim")
        return out
