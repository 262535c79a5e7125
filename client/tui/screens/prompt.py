"""A one-line question in a dialog: a group's name, a topic, handles to add."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from .. import render

__all__ = ["PromptScreen"]


class PromptScreen(ModalScreen[str | None]):
    """Dismisses with the text entered (Enter), or None (Esc)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str, *, value: str = "", placeholder: str = "",
                 hint: str = "Enter saves · Esc cancels", password: bool = False) -> None:
        super().__init__()
        self.password = password
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(render.plain(self.title_text), classes="title")
            yield Input(self.value, placeholder=self.placeholder, id="answer",
                        password=self.password)
            yield Static(render.plain(self.hint), classes="hint")

    @on(Input.Submitted, "#answer")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)
