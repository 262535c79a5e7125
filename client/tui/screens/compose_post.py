"""Write a post: text, an optional image with a filter previewed before it goes, and
who sees it (public, or followers only — sealed under the audience key)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Select, Static, TextArea

from ....common.errors import TenchatError
from .. import render
from ..widgets.image_picker import ImagePicker

__all__ = ["ComposePostScreen"]


class ComposePostScreen(ModalScreen[Any]):
    DEFAULT_CSS = "ComposePostScreen #post-text { height: 4; }"
    """Posts on Ctrl+S and dismisses with the PostView; None on Esc."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"),
                Binding("ctrl+s", "post", "Post")]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def compose(self) -> ComposeResult:
        # scrolls: with an image preview it is taller than 24 lines
        with VerticalScroll(classes="dialog wide", id="compose-post"):
            yield Static("New post", classes="title")
            yield Static("Ctrl+S posts · Tab next field · Esc cancels", id="post-hint",
                         classes="hint")
            yield TextArea(id="post-text", soft_wrap=True)
            yield Select([("public: anyone", "public"),
                          ("followers only (sealed)", "followers")],
                         value="public", allow_blank=False, id="audience")
            yield ImagePicker(id="post-picker",
                              placeholder="image to add (optional; Tab completes)")

    def on_mount(self) -> None:
        self.query_one("#post-text", TextArea).focus()

    def action_post(self) -> None:
        self._post()

    @work(exclusive=True, group="post")
    async def _post(self) -> None:
        text = self.query_one("#post-text", TextArea).text.strip()
        picker = self.query_one(ImagePicker)
        audience = self.query_one("#audience", Select).value
        hint = self.query_one("#post-hint", Static)
        hint.update("posting…")
        try:
            with tempfile.TemporaryDirectory(prefix="tenchat-post-") as folder:
                image = await picker.prepared(Path(folder))
                if image is None and picker.query_one("#pick-path").value.strip():  # type: ignore[attr-defined]
                    hint.update("[b]The image path names no file.[/b]")
                    return
                post = await self.client.social.post(
                    text, images=[image] if image else [],
                    audience=audience if isinstance(audience, str) else None)
        except (TenchatError, OSError, ValueError) as exc:
            hint.update(render.plain(str(exc), "bold"))
            return
        self.dismiss(post)
