"""The feed: posts of the accounts one follows (and one's own), newest first, a page at a
time as the cursor nears the end. One OptionList holds the loaded posts (pages are 20)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..bindings import key_bindings
from ..keys import FEED_KEYS
from ..social_view import Names, post_card
from .post_actions import ERRORS, comment_on_post, react_to_post

if TYPE_CHECKING:
    from ..app import TenchatApp

__all__ = ["FeedScreen", "FEED_PAGE"]

log = logging.getLogger("tenchat.tui")

FEED_PAGE = 20
FEED_POLL = 2.0  # seconds between checks for new posts and stories while the feed is open


class FeedScreen(Screen[None]):
    DEFAULT_CSS = """
    FeedScreen #feed-title { margin: 0 1; }
    FeedScreen #story-bar { margin: 0 1 1 1; height: auto; }
    FeedScreen #posts { height: 1fr; border: none; }
    FeedScreen #posts > .option-list--option { padding: 0 1; }
    FeedScreen .hint { margin: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        *key_bindings(spec for spec in FEED_KEYS if spec.id != "open_post")]

    def __init__(self, client: Any, *, poll: float = FEED_POLL) -> None:
        super().__init__()
        self.client = client
        self.poll = poll
        self._polling = False
        self.posts: list[Any] = []
        self.more = True  # the relay may hold older posts
        self._loading = False
        self.names = Names(client)

    @property
    def tz(self) -> Any:
        return getattr(self.app, "tz", None)

    def compose(self) -> ComposeResult:
        yield Static(f"Feed · @{self.client.handle}", id="feed-title", classes="title")
        yield Static("", id="story-bar")
        yield OptionList(id="posts")
        yield Static("Enter open · e react · c comment · n post · p profile · s stories",
                     id="feed-hint", classes="hint")

    async def on_mount(self) -> None:
        self.query_one("#posts", OptionList).focus()
        self.query_one("#story-bar", Static).display = False
        self.reload()
        self.load_stories()
        self.set_interval(self.poll, self._tick)

    # --- live: the relay pushes no posts, so the newest page is asked for again ----------

    def _tick(self) -> None:
        if self._polling or self._loading or self.client.connection_state != "online":
            return
        self._polling = True
        self._poll_new()

    @work(group="feed-poll", exit_on_error=False)
    async def _poll_new(self) -> None:
        try:
            try:
                page = await self.client.social.feed(limit=FEED_PAGE)
            except ERRORS as exc:
                log.info("feed poll: %s", exc)
                return
            known = {p.id for p in self.posts}
            new = []
            for post in page:  # newest first: stop at the first one already shown
                if post.id in known:
                    break
                new.append(post)
            if new and not self._loading and self.posts:
                await self.names.load([p.author for p in new])
                self._prepend(new)
            elif new and not self._loading:
                self.reload()  # the feed was empty: load it as on opening
            self.load_stories()
        finally:
            self._polling = False

    def _prepend(self, new: list[Any]) -> None:
        """Newer posts on top; the highlighted post stays highlighted."""
        posts = self.query_one("#posts", OptionList)
        current = posts.highlighted_option.id if posts.highlighted_option else None
        self.posts = new + self.posts
        posts.clear_options()
        options: list[Option | None] = []
        for p in self.posts:
            if options:
                options.append(None)
            options.append(self._option(p))
        posts.add_options(options)
        if current is not None and current != "empty":
            posts.highlighted = posts.get_option_index(current)
        else:
            posts.highlighted = 0
        self.notify(f"{len(new)} new post{'s' if len(new) > 1 else ''}", timeout=3)

    @work(group="story-bar", exclusive=True, exit_on_error=False)
    async def load_stories(self) -> None:
        from .stories import story_bar

        try:
            stories = await self.client.stories.stories()
        except ERRORS as exc:
            log.info("stories: %s", exc)
            return
        bar = self.query_one("#story-bar", Static)
        bar.display = bool(stories)
        if stories:
            bar.update(story_bar(stories, self.client.user))

    # --- loading ------------------------------------------------------------------------

    @work(group="feed", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        self.posts, self.more = [], True
        self.query_one("#posts", OptionList).clear_options()
        await self._load_page()

    async def _load_page(self) -> None:
        if self._loading or not self.more:
            return
        self._loading = True
        try:
            before = self.posts[-1].id if self.posts else None
            try:
                page = await self.client.social.feed(limit=FEED_PAGE, before=before)
            except ERRORS as exc:
                self.notify(f"feed: {exc}", severity="error")
                return
            self.more = len(page) == FEED_PAGE
            known = {p.id for p in self.posts}
            page = [p for p in page if p.id not in known]  # a post can't be listed twice
            await self.names.load([p.author for p in page])
            self.posts.extend(page)
            posts = self.query_one("#posts", OptionList)
            options: list[Option | None] = []
            for p in page:
                if posts.option_count or options:
                    options.append(None)  # a rule between posts
                options.append(self._option(p))
            posts.add_options(options)
            if posts.highlighted is None and self.posts:
                posts.highlighted = 0
            self._empty()
        finally:
            self._loading = False

    def _empty(self) -> None:
        posts = self.query_one("#posts", OptionList)
        if not self.posts:
            posts.add_option(Option("No posts yet. Follow someone from their profile "
                                    "(p, then o) or press n to write the first.",
                                    disabled=True, id="empty"))

    def _option(self, post: Any) -> Option:
        return Option(post_card(post, self.names.get(post.author), self.tz,
                                cast("TenchatApp", self.app).today()),
                      id=post.id.hex())

    @on(OptionList.OptionHighlighted, "#posts")
    def _near_end(self, event: OptionList.OptionHighlighted) -> None:
        count = self.query_one("#posts", OptionList).option_count
        if event.option_index >= count - 3 and self.more and not self._loading:
            self._more()

    @work(group="feed-more", exit_on_error=False)
    async def _more(self) -> None:
        await self._load_page()

    def selected(self) -> Any:
        option = self.query_one("#posts", OptionList).highlighted_option
        post = next((p for p in self.posts if option is not None and p.id.hex() == option.id),
                    None)
        if post is None:
            self.notify("No post selected.", severity="warning")
        return post

    async def refresh_post(self, post: Any) -> None:
        """Fetch ``post``'s counts again and redraw it in place."""
        try:
            fresh = (await self.client.social._with_extras([post]))[0]
        except ERRORS:
            return
        for i, p in enumerate(self.posts):
            if p.id == fresh.id:
                self.posts[i] = replace(p, comments=fresh.comments, reactions=fresh.reactions)
                self.query_one("#posts", OptionList).replace_option_prompt(
                    p.id.hex(), self._option(self.posts[i]).prompt)

    # --- actions ------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#posts")
    def action_open_post(self) -> None:
        post = self.selected()
        if post is None:
            return
        from .post import PostScreen

        def refresh(_: object) -> None:
            self.run_worker(self.refresh_post(post))

        self.app.push_screen(PostScreen(self.client, post, self.names.get(post.author)),
                             refresh)

    def action_react_post(self) -> None:
        post = self.selected()
        if post is not None:
            react_to_post(self, post, lambda: self.run_worker(self.refresh_post(post)))

    def action_comment_post(self) -> None:
        post = self.selected()
        if post is not None:
            comment_on_post(self, post, lambda: self.run_worker(self.refresh_post(post)))

    def action_new_post(self) -> None:
        from .compose_post import ComposePostScreen

        def posted(post: Any) -> None:
            if post is not None:
                self.notify("Posted.")
                self.reload()

        self.app.push_screen(ComposePostScreen(self.client), posted)

    def action_author_profile(self) -> None:
        from .profile import ProfileScreen

        post = self.selected()
        handle = post.handle if post is not None else None
        self.app.push_screen(ProfileScreen(self.client, handle))

    def action_view_stories(self) -> None:
        open_stories(self, self.client)

    def action_reload(self) -> None:
        self.reload()
        self.load_stories()


def open_stories(screen: Any, client: Any) -> None:
    """Fetch the stories and play them in the viewer; a note if there are none."""
    from .stories import StoryScreen, play_order

    async def fetch() -> None:
        try:
            stories = await client.stories.stories()
        except ERRORS as exc:
            screen.notify(f"stories: {exc}", severity="error")
            return
        if not stories:
            screen.notify("No stories right now.")
            return
        done = getattr(screen, "load_stories", None)
        screen.app.push_screen(StoryScreen(client, play_order(stories)),
                               (lambda _: done()) if done is not None else None)

    screen.run_worker(fetch(), group="stories", exclusive=True)
