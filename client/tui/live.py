"""Live updates the relay doesn't push: new stories of whom we follow.

The relay has no push for stories or posts (docs/protocol.md §6B, §6C), so while the
TUI is online it asks for the stories every :data:`STORY_POLL` seconds — one
``stories`` request, answered from an index — and announces each story it had not
seen before, by someone else, as a notification: within 2 s of posting.
"""

from __future__ import annotations

import logging
from typing import Any

from textual.timer import Timer

from ...common.errors import TenchatError

__all__ = ["StoryWatcher", "STORY_POLL"]

log = logging.getLogger("tenchat.tui")

STORY_POLL = 1.0  # seconds between story checks while online


class StoryWatcher:
    """Polls the stories while the screen lives; ``known`` holds the ids seen so far
    (the first check only learns them: stories posted before the app started are not
    news)."""

    def __init__(self, screen: Any, every: float = STORY_POLL) -> None:
        self.screen = screen
        self.every = every
        self.known: set[bytes] | None = None
        self.announced: list[Any] = []  # StoryViews announced, oldest first
        self._timer: Timer | None = None
        self._busy = False

    def start(self) -> None:
        self._timer = self.screen.set_interval(self.every, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def _tick(self) -> None:
        client = self.screen.client
        if self._busy or client.connection_state != "online":
            return
        self._busy = True
        self.screen.run_worker(self.check(), group="story-watch", exit_on_error=False)

    async def check(self) -> list[Any]:
        """Fetch the stories; the new ones by others (announced)."""
        client = self.screen.client
        try:
            stories = await client.stories.stories()
        except (TenchatError, OSError) as exc:
            log.info("story check: %s", exc)
            return []
        finally:
            self._busy = False
        ids = {s.id for s in stories}
        if self.known is None:
            self.known = ids
            return []
        new = [s for s in stories if s.id not in self.known and s.author != client.user]
        self.known |= ids
        for story in sorted(new, key=lambda s: s.posted_at):
            self.announced.append(story)
            who = f"@{story.handle}" if story.handle else "someone you follow"
            self.screen.notify(f"New story from {who} — F4 watches it",
                               title="Story", timeout=8)
        return new
