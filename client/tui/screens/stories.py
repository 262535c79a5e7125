"""The story viewer: one story at a time, full screen, moving on by itself after a few
seconds or with the arrow keys. Opening a story is the core's ``open_story``: it decrypts
the story and its image, marks it seen and sends the view receipt unless incognito."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from ....common.errors import TenchatError
from .. import render
from ..bindings import key_bindings
from ..keys import STORY_KEYS
from ..social_view import shrink, when
from ..widgets.image_preview import ImagePreview

__all__ = ["StoryScreen", "ADVANCE", "play_order", "story_bar"]

ADVANCE = 5.0  # seconds a story stays before the next one


def play_order(stories: list[Any]) -> list[Any]:
    """The core lists authors (unseen first) with each one's stories newest first; one
    watches an author's stories in the order they were posted."""
    out: list[Any] = []
    by_author: dict[bytes, list[Any]] = {}
    for story in stories:
        by_author.setdefault(story.author, []).append(story)
    for group in by_author.values():
        out.extend(sorted(group, key=lambda s: s.posted_at))
    return out


def story_bar(stories: list[Any], me: bytes) -> Text:
    """"Stories  ● @bob  ● @carol  ○ @you" — ● someone with a story you haven't seen."""
    out = Text("Stories ", "bold")
    seen: dict[bytes, tuple[str, bool]] = {}
    for story in stories:
        name = "you" if story.author == me else (story.handle or "?")
        old = seen.get(story.author, (name, True))
        seen[story.author] = (name, old[1] and story.seen)
    for name, all_seen in seen.values():
        out.append(" ○ " if all_seen else " ● ", "dim" if all_seen else "bold")
        out.append(f"@{name}", "dim" if all_seen else "")
    out.append("   s watch", "dim")
    return out


class StoryScreen(Screen[None]):
    DEFAULT_CSS = """
    StoryScreen { align: center middle; }
    StoryScreen #story { width: 100%; height: 1fr; padding: 0 2; }
    StoryScreen #story-progress { height: 1; }
    StoryScreen #story-head { height: 1; margin-bottom: 1; }
    StoryScreen #story-image { width: auto; }
    StoryScreen #story-text { margin-top: 1; height: auto; text-align: center; width: 100%; }
    StoryScreen .hint { margin: 0 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "app.pop_screen", "Close"),
                                            *key_bindings(STORY_KEYS)]

    def __init__(self, client: Any, stories: list[Any], *, advance: float = ADVANCE) -> None:
        super().__init__()
        self.client = client
        self.stories = stories
        self.advance = advance
        self.index = 0
        self.opened: dict[bytes, Any] = {}  # id → the opened StoryView
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="story"):
            yield Static(id="story-progress")
            yield Static(id="story-head")
            with Center():
                yield ImagePreview(id="story-image", max_rows=12, max_columns=60)
            yield Static(id="story-text")
        yield Static("← previous · → next (or wait 5 s) · Esc close", classes="hint")

    def on_mount(self) -> None:
        self.show(0)

    def show(self, index: int) -> None:
        self.index = index
        if self._timer is not None:
            self._timer.stop()
        self._open(index)

    @work(group="story", exclusive=True, exit_on_error=False)
    async def _open(self, index: int) -> None:
        story = self.stories[index]
        self._progress()
        head = self.query_one("#story-head", Static)
        text = self.query_one("#story-text", Static)
        image = self.query_one("#story-image", ImagePreview)
        tz, today = getattr(self.app, "tz", None), self.app.today()  # type: ignore[attr-defined]
        who = "you" if story.author == self.client.user else f"@{story.handle or '?'}"
        line = Text(who, "bold")
        line.append(f" · {when(story.posted_at, tz, today)}", "dim")
        if story.close_friends:
            line.append(" · close friends", "green")
        head.update(line)
        view = self.opened.get(story.id)
        if view is None:
            try:
                view = await self.client.stories.open_story(story.id)
            except (TenchatError, OSError) as exc:
                text.update(Text(str(exc), "italic"))
                image.set_image(None)
                image.display = False
                self._schedule()
                return
            if view.image is not None:
                view = replace(view, image=await shrink(view.image))
            self.opened[story.id] = view
            self.stories[index] = view  # now seen
        image.display = view.image is not None
        image.set_image(view.image)
        text.update(render.plain(view.text or "", "bold" if view.image is None else ""))
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.advance, self.action_next_story)

    def _progress(self) -> None:
        n = len(self.stories)
        width = max(1, (self.size.width - 4 - (n - 1)) // max(1, n))
        bar = Text()
        for i in range(n):
            if i:
                bar.append(" ")
            bar.append("━" * width, "bold" if i <= self.index else "dim")
        self.query_one("#story-progress", Static).update(bar)

    def action_next_story(self) -> None:
        if self.index + 1 < len(self.stories):
            self.show(self.index + 1)
        else:
            if self._timer is not None:
                self._timer.stop()
            self.dismiss(None)

    def action_previous_story(self) -> None:
        self.show(max(0, self.index - 1))
