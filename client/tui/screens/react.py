"""The emoji picker for a reaction: six common ones by number or arrow, or type one."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

__all__ = ["ReactScreen", "EMOJI"]

EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🙏"]


class ReactScreen(ModalScreen[str | None]):
    """Dismisses with the chosen emoji, or None. 1–6 pick directly; Tab goes to the field
    where any emoji can be typed."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel"),
        *[Binding(str(i + 1), f"pick({i})", show=False) for i in range(len(EMOJI))]]

    def __init__(self, current: set[str] | None = None) -> None:
        super().__init__()
        self.current = current or set()  # ours already: choosing one again removes it

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="react"):
            yield Static("React", classes="title")
            yield OptionList(*[
                Option(f"{i + 1}  {e}" + ("  (yours: choose to remove)" if e in self.current
                                          else ""), id=str(i))
                for i, e in enumerate(EMOJI)], id="emoji")
            yield Input(placeholder="or type an emoji, Enter", id="other")
            yield Static("1–6 or Enter picks · Tab: type another · Esc cancels",
                         classes="hint")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def action_pick(self, index: int) -> None:
        if not isinstance(self.focused, Input):
            self.dismiss(EMOJI[index])

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(EMOJI[int(event.option.id or 0)])

    @on(Input.Submitted, "#other")
    def _typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())
