"""Disappearing messages: choose the conversation's timer."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

__all__ = ["TimerScreen", "TIMERS", "timer_label"]

TIMERS = [(0, "off"), (30, "30 seconds"), (300, "5 minutes"), (3600, "1 hour"),
          (86400, "1 day"), (604800, "1 week")]


def timer_label(seconds: int) -> str:
    """The short form for the header: 30s, 5m, 1h, 1d, 1w."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class TimerScreen(ModalScreen[int | None]):
    """Dismisses with the chosen seconds (0: off), or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, current: int) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="timer"):
            yield Static("Disappearing messages", classes="title")
            yield OptionList(*[Option(label + ("  ✓" if s == self.current else ""), id=str(s))
                               for s, label in TIMERS], id="timers")
            yield Static("New messages vanish this long after they arrive, on every side. "
                         "Enter sets · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = next((i for i, (s, _) in enumerate(TIMERS)
                                    if s == self.current), 0)
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))
