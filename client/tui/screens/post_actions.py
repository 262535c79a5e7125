"""What the feed and a post's own screen both do to a post: react to it, comment on it.
(Here, not in feed.py, so the post screen needn't import the feed that opens it.)"""

from __future__ import annotations

from typing import Any

from ....common.errors import TenchatError

__all__ = ["ERRORS", "react_to_post", "comment_on_post"]

ERRORS = (TenchatError, OSError)


def react_to_post(screen: Any, post: Any, done: Any) -> None:
    from .react import ReactScreen

    async def send(emoji: str) -> None:
        try:
            await screen.client.social.react(post.id.hex(), emoji)
        except ERRORS as exc:
            screen.notify(str(exc), severity="error")
            return
        done()

    def chosen(emoji: str | None) -> None:
        if emoji:
            screen.run_worker(send(emoji), group="post-action")

    screen.app.push_screen(ReactScreen(), chosen)


def comment_on_post(screen: Any, post: Any, done: Any) -> None:
    from .prompt import PromptScreen

    if post.text is None:
        screen.notify("You can't read this followers-only post.", severity="warning")
        return

    async def send(text: str) -> None:
        try:
            await screen.client.social.comment(post.id.hex(), text)
        except ERRORS as exc:
            screen.notify(str(exc), severity="error")
            return
        screen.notify("Comment posted.")
        done()

    def written(text: str | None) -> None:
        if text and text.strip():
            screen.run_worker(send(text.strip()), group="post-action")

    who = f"@{post.handle}" if post.handle else "this post"
    screen.app.push_screen(PromptScreen(f"Comment on {who}'s post",
                                        placeholder="your comment",
                                        hint="Enter posts · Esc cancels"), written)
