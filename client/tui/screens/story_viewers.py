"""Your stories still up, each with who viewed it (their end-to-end view receipts) —
``client.stories.stories_of("me")`` and ``viewers``, as `tenchat story viewers`.
Updates live: a view receipt arriving (``StoryViewed``) reloads the list."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ....common.errors import TenchatError
from ...events import StoryViewed
from ..social_view import when

__all__ = ["StoryViewersScreen", "viewers_text"]


def viewers_text(rows: list[tuple[Any, list[Any]]], tz: Any, today: Any) -> Text:
    """One block per story: when, audience, its text; then each viewer and when."""
    out = Text()
    if not rows:
        out.append("You have no story up. F9 posts one.", "dim")
        return out
    for n, (story, viewers) in enumerate(rows):
        if n:
            out.append("\n\n")
        out.append(when(story.posted_at, tz, today), "bold")
        out.append(" · close friends" if story.close_friends else " · followers", "dim")
        if story.has_image:
            out.append(" · 🖼", "dim")
        out.append("\n")
        out.append((story.text or "(an image)").splitlines()[0][:70] if story.text
                   else "(an image)")
        out.append("\n")
        if not viewers:
            out.append("  no views yet", "dim")
        else:
            out.append(f"  👁 {len(viewers)} viewed: ", "bold")
            out.append(", ".join(f"@{v.handle or '?'} ({when(v.at, tz, today)})"
                                 for v in viewers))
    return out


class StoryViewersScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.rows: list[tuple[Any, list[Any]]] = []
        self._unsubscribe: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="story-viewers"):
            yield Static("Your stories and their viewers", classes="title")
            yield Static("loading…", id="viewers")
            yield Static("Esc closes", classes="hint")

    def on_mount(self) -> None:
        self._unsubscribe = self.client.subscribe(self._event)
        self.reload()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _event(self, event: Any) -> None:
        if isinstance(event, StoryViewed):
            self.reload()

    @work(group="story-viewers", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        try:
            stories = await self.client.stories.stories_of("me")
            rows = [(s, await self.client.stories.viewers(s.id)) for s in stories]
        except (TenchatError, OSError) as exc:
            self.query_one("#viewers", Static).update(Text(str(exc), "bold"))
            return
        self.rows = rows
        tz = getattr(self.app, "tz", None)
        self.query_one("#viewers", Static).update(
            viewers_text(rows, tz, self.app.today()))  # type: ignore[attr-defined]
