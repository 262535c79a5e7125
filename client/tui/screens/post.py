"""One post with its image and its comments (newest first, verified by the core)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from ....common.errors import TenchatError
from ....common.textsafe import for_terminal
from .. import render
from ..social_view import byline, fetch_blob, post_card, when
from ..widgets.image_preview import ImagePreview
from .post_actions import comment_on_post, react_to_post

__all__ = ["PostScreen"]


class PostScreen(Screen[None]):
    DEFAULT_CSS = """
    PostScreen #post-body { height: 1fr; padding: 0 1; }
    PostScreen #post-image { margin-top: 1; }
    PostScreen #comments-title { margin-top: 1; }
    PostScreen .hint { margin: 0 1; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Back"),
                Binding("e", "react_post", "React"),
                Binding("c", "comment_post", "Comment"),
                Binding("o", "open_image", "Image")]

    def __init__(self, client: Any, post: Any, name: str = "") -> None:
        super().__init__()
        self.client = client
        self.post = post
        self.name_text = name
        self.image: bytes | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="post-body"):
            yield Static(id="post-card")
            yield ImagePreview(id="post-image", max_rows=10, max_columns=60)
            yield Static("Comments", classes="title", id="comments-title")
            yield Static("loading…", id="comments")
        yield Static("e react · c comment · o image full size · Esc back", classes="hint")

    def on_mount(self) -> None:
        self._show_card()
        self.query_one("#post-image", ImagePreview).display = bool(self.post.images)
        self.query_one("#post-body").focus()
        self.run_worker(self._load(), group="post", exclusive=True)
        if self.post.images:
            self.run_worker(self._load_image(), group="post-image")

    def _show_card(self) -> None:
        self.query_one("#post-card", Static).update(
            post_card(self.post, self.name_text, getattr(self.app, "tz", None),
                      self.app.today()))  # type: ignore[attr-defined]

    async def _load(self) -> None:
        try:
            post, comments = await self.client.social.comments(self.post.id.hex())
            (self.post,) = await self.client.social._with_extras([post])
        except (TenchatError, OSError) as exc:
            self.query_one("#comments", Static).update(render.plain(str(exc), "bold"))
            return
        self._show_card()
        tz, today = getattr(self.app, "tz", None), self.app.today()  # type: ignore[attr-defined]
        out = Text()
        for n, comment in enumerate(comments):
            if n:
                out.append("\n")
            out.append_text(byline("", comment.handle, when(comment.created_at, tz, today)))
            out.append("\n  ")
            out.append(for_terminal(comment.text) if comment.text is not None else
                       "🔒 sealed: you hold no key for it",
                       "" if comment.text is not None else "dim italic")
        self.query_one("#comments", Static).update(out if comments else
                                                   Text("No comments yet.", "dim"))

    async def _load_image(self) -> None:
        preview = self.query_one("#post-image", ImagePreview)
        try:
            self.image = await fetch_blob(self.client, self.post.images[0])
        except (TenchatError, OSError, ValueError) as exc:
            preview.empty = f"[image not loaded: {exc}]"
            preview.set_image(None)
            return
        preview.set_image(self.image)

    def action_react_post(self) -> None:
        react_to_post(self, self.post, lambda: self.run_worker(self._load(), group="post"))

    def action_comment_post(self) -> None:
        comment_on_post(self, self.post, lambda: self.run_worker(self._load(), group="post"))

    def action_open_image(self) -> None:
        if self.image is not None:
            from .image_view import ImageScreen

            self.app.push_screen(ImageScreen(f"@{self.post.handle}'s image", self.image))
