"""The attachment picker: a file by path (Tab completes), a caption, and for images a
filter with a live preview, before it is sealed and sent in the open conversation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from .. import render
from ..widgets.image_picker import ImagePicker

__all__ = ["AttachScreen", "AttachChoice"]


@dataclass(frozen=True, slots=True)
class AttachChoice:
    picker: ImagePicker  # still holds the file and its filter: ``await picker.prepared()``
    caption: str


class AttachScreen(ModalScreen[AttachChoice | None]):
    """Dismisses with the choice (Ctrl+S, or Enter in the caption), or None (Esc)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"),
                Binding("ctrl+s", "send", "Send")]

    def __init__(self, to: str, start: str = "") -> None:
        super().__init__()
        self.to = to
        self.start = start

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="attach"):
            yield Static(render.plain(f"Send a file to {self.to}"), classes="title")
            yield Static("Tab completes the path · Enter in the caption or Ctrl+S sends · "
                         "Esc cancels", id="attach-hint", classes="hint")
            yield ImagePicker(id="picker")
            yield Input(placeholder="caption (optional)", id="caption")

    def on_mount(self) -> None:
        picker = self.query_one(ImagePicker)
        if self.start:
            picker.set_path(self.start)
        picker.query_one("#pick-path", Input).focus()

    @on(Input.Submitted, "#caption")
    def _caption(self) -> None:
        self.action_send()

    @on(Input.Submitted, "#pick-path")
    def _path(self) -> None:
        self.query_one("#caption", Input).focus()

    def action_send(self) -> None:
        picker = self.query_one(ImagePicker)
        value = picker.query_one("#pick-path", Input).value.strip()
        if picker.path is None or str(picker.path) != str(Path(value).expanduser()):
            self.query_one("#attach-hint", Static).update("[b]Choose an existing file first.[/b]")
            return
        self.dismiss(AttachChoice(picker, self.query_one("#caption", Input).value.strip()))
