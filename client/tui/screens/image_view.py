"""One image, as large as the terminal allows: an attachment, a post's image, an avatar."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from .. import render
from ..widgets.image_preview import ImagePreview

__all__ = ["ImageScreen"]


class ImageScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter,o", "dismiss(None)", "Close")]

    def __init__(self, title: str, data: bytes) -> None:
        super().__init__()
        self.title_text = title
        self.data = data

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="image-view"):
            yield Static(render.plain(self.title_text), classes="title")  # e.g. a file name
            yield ImagePreview(self.data, id="image", max_rows=max(4, self.app.size.height - 8),
                               max_columns=max(8, self.app.size.width - 12))
            yield Static("Esc closes", classes="hint")
