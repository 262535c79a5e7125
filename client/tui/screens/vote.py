"""Vote in a poll: the options with their counts; digits or Enter choose."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from .. import render

__all__ = ["VoteScreen"]


class VoteScreen(ModalScreen[list[int] | None]):
    """Dismisses with the chosen option indexes (0-based; empty takes the vote back), or
    None. One choice: a digit or Enter votes at once. Several: digits or Space toggle,
    Enter votes for what is marked."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel"),
                Binding("space", "mark", "Mark", show=False),
                Binding("0", "retract", "Take back", show=False),
        *[Binding(str(i + 1), f"pick({i})", show=False) for i in range(9)]]

    def __init__(self, poll: Any) -> None:
        super().__init__()
        self.poll = poll  # client.polls.PollView
        self.marked: set[int] = set(poll.mine)

    def compose(self) -> ComposeResult:
        how = ("digits or Space mark, Enter votes" if self.poll.multiple
               else "a digit or Enter votes")
        with Vertical(classes="dialog", id="vote"):
            yield Static(render.plain(self.poll.question), classes="title")
            yield OptionList(*self._options(), id="poll-options")
            yield Static(f"{how} · 0 takes your vote back · Esc cancels", classes="hint")

    def _options(self) -> list[Option]:
        out = []
        for i, text in enumerate(self.poll.options):
            if self.poll.multiple:
                mark = "■" if i in self.marked else "□"
            else:
                mark = "●" if i in self.marked else "○"
            out.append(Option(render.plain(f"{mark} {i + 1}  {text}  ({self.poll.counts[i]})"),
                              id=str(i)))
        return out

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self.poll.mine:
            options.highlighted = self.poll.mine[0]

    def _redraw(self) -> None:
        options = self.query_one(OptionList)
        highlighted = options.highlighted
        options.clear_options()
        options.add_options(self._options())
        options.highlighted = highlighted

    def action_pick(self, index: int) -> None:
        if index >= len(self.poll.options):
            return
        if not self.poll.multiple:
            self.dismiss([index])
            return
        self.marked ^= {index}
        self._redraw()

    def action_mark(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None and self.poll.multiple:
            self.action_pick(highlighted)

    def action_retract(self) -> None:
        self.dismiss([])

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        index = int(event.option.id or 0)
        if not self.poll.multiple:
            self.dismiss([index])
        else:
            self.dismiss(sorted(self.marked) if self.marked else [index])
