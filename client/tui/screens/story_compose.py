"""Post a story: text and/or an image with a filter previewed before it goes, for your
followers or only your close friends — ``client.stories.post_story``, as
`tenchat story post`. It lives 24 hours."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Select, Static, TextArea

from ....common.errors import TenchatError
from ..widgets.image_picker import ORIGINAL, ImagePicker

__all__ = ["StoryComposeScreen"]


class StoryComposeScreen(ModalScreen[Any]):
    """Posts on Ctrl+S and dismisses with the StoryView; None on Esc."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"),
                Binding("ctrl+s", "post", "Post the story")]

    def __init__(self, client: Any, *, text: str = "", image: str = "") -> None:
        super().__init__()
        self.client = client
        self.text = text
        self.image = image

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="story-compose"):
            yield Static("New story (gone after 24 hours)", classes="title")
            yield Static("Ctrl+S posts · Tab next field · Esc cancels", id="story-hint",
                         classes="hint")
            yield TextArea(self.text, id="story-text-input", soft_wrap=True)
            yield Select([("followers", "followers"),
                          ("close friends only", "close_friends")],
                         value="followers", allow_blank=False, id="story-audience")
            yield ImagePicker(id="story-picker",
                              placeholder="image (optional; Tab completes), then a filter")

    def on_mount(self) -> None:
        self.query_one("#story-text-input", TextArea).focus()
        if self.image:
            self.query_one(ImagePicker).set_path(self.image)

    def action_post(self) -> None:
        self._post()

    @work(group="story-post", exclusive=True, exit_on_error=False)
    async def _post(self) -> None:
        text = self.query_one("#story-text-input", TextArea).text.strip()
        picker = self.query_one(ImagePicker)
        audience = self.query_one("#story-audience", Select).value
        hint = self.query_one("#story-hint", Static)
        if picker.path is None and picker.query_one("#pick-path").value.strip():  # type: ignore[attr-defined]
            hint.update(Text("The image path names no file.", "bold"))
            return
        if picker.path is not None and not picker.is_image:
            hint.update(Text("A story's picture must be an image (PNG, JPEG, WebP, GIF).",
                             "bold"))
            return
        hint.update("posting…")
        spec = picker.filter if picker.path is not None else ORIGINAL
        try:
            story = await self.client.stories.post_story(
                text or None, picker.path, None if spec == ORIGINAL else spec,
                close_friends=audience == "close_friends")
        except (TenchatError, OSError, ValueError) as exc:
            hint.update(Text(str(exc), "bold"))
            return
        self.notify("Story posted" + (" for close friends." if story.close_friends else "."))
        self.dismiss(story)
