"""Live story notifications: a story posted by whom we follow, announced as it comes.

The relay pushes ``story_new`` to an author's followers online (docs/protocol.md §6C);
the client fetches and opens the story and emits :class:`~tenchat.client.events.StoryPosted`,
which the watcher announces at once. Pushes sent while we were offline are lost, so
after each (re)connect, and every :data:`STORY_POLL` seconds as a fallback, it also
asks for the stories once and announces the ones it had not seen.
"""

from __future__ import annotations

import logging
from typing import Any

from textual.timer import Timer

from ...common.errors import TenchatError
from ..events import ONLINE, ConnectionChanged, Event, StoryPosted

__all__ = ["StoryWatcher", "STORY_POLL"]

log = logging.getLogger("tenchat.tui")

STORY_POLL = 60.0  # seconds between fallback checks (the push is the fast path)


class StoryWatcher:
    """Announces new stories while the screen lives; ``known`` holds the ids seen so far
    (the first check only learns them: stories posted before the app started are not
    news; a push is news at any time)."""

    def __init__(self, screen: Any, every: float = STORY_POLL) -> None:
        self.screen = screen
        self.every = every
        self.known: set[bytes] = set()
        self.checked = False  # the first check is done
        self.announced: list[StoryPosted] = []  # oldest first
        self._timer: Timer | None = None
        self._unsubscribe: Any = None
        self._busy = False

    def start(self) -> None:
        self._unsubscribe = self.screen.client.subscribe(self._event)
        self._timer = self.screen.set_interval(self.every, self._tick)
        self._tick()  # learn what is there now (if online; else at the connect)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _event(self, event: Event) -> None:
        if isinstance(event, StoryPosted):
            self._announce([event])
        elif isinstance(event, ConnectionChanged) and event.state == ONLINE:
            self._tick()  # pushes sent while we were away are lost: catch up

    def _tick(self) -> None:
        client = self.screen.client
        if self._busy or client.connection_state != ONLINE:
            return
        self._busy = True
        self.screen.run_worker(self.check(), group="story-watch", exit_on_error=False)

    async def check(self) -> list[StoryPosted]:
        """Fetch the stories; the new ones by others (announced)."""
        client = self.screen.client
        try:
            stories = await client.stories.stories()
        except (TenchatError, OSError) as exc:
            log.info("story check: %s", exc)
            return []
        finally:
            self._busy = False
        if not self.checked:  # the first check: what was there before is not news
            self.checked = True
            self.known |= {s.id for s in stories}
            return []
        return self._announce([StoryPosted(s.id, s.author, s.handle)
                               for s in sorted(stories, key=lambda s: s.posted_at)])

    def _announce(self, stories: list[StoryPosted]) -> list[StoryPosted]:
        new = [s for s in stories if s.story not in self.known
               and s.author != self.screen.client.user]
        for story in new:
            self.known.add(story.story)
            self.announced.append(story)
            who = f"@{story.handle}" if story.handle else "someone you follow"
            self.screen.notify(f"New story from {who} — F4 watches it",
                               title="Story", timeout=8)
        return new
