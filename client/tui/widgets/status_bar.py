"""The status bar: relay connection state, identity, unread total, do-not-disturb."""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

__all__ = ["StatusBar"]


class StatusBar(Static):
    """One line at the bottom: ``● online  @alice  3 unread  DND``."""

    state: reactive[str] = reactive("connecting")
    retry_at: reactive[float | None] = reactive(None)  # monotonic time of the next attempt
    error: reactive[str] = reactive("")
    identity: reactive[str] = reactive("")
    relay: reactive[str] = reactive("")
    unread: reactive[int] = reactive(0)
    dnd: reactive[bool] = reactive(False)
    selecting: reactive[bool] = reactive(False)  # the message log has the focus

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        if self.retry_at is not None:
            self.refresh()

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        if self.state == "online":
            out.append("● online", "bold green")
        elif self.retry_at is not None:
            # Waits are under a second (service.RECONNECT_CAP): "in 1s" while waiting.
            left = max(0, math.ceil(self.retry_at - time.monotonic()))
            out.append(f"○ offline — reconnecting in {left}s", "bold yellow")
        elif self.state == "connecting":
            out.append("◌ connecting…", "yellow")
        else:
            out.append("○ offline", "bold red")
        out.append(f"   @{self.identity}" if self.identity else "")
        if self.relay:
            out.append(f" on {self.relay}", "dim")
        if self.unread:
            out.append(f"   {self.unread} unread", "bold")
        if self.dnd:
            out.append("   DND", "reverse")
        if self.selecting:
            out.append("   SELECT ", "bold reverse")
            out.append(" Esc back · r reply · e react · E edit · d delete · p pin · "
                       "↑↓ move", "bold")  # Esc first: narrow terminals cut the end
        else:
            out.append("   F1 help · Ctrl+P commands", "dim")
        return out
