"""What the social screens share: display names from verified profiles, an attachment's
bytes (downloaded and hash-checked by the core), and how a post looks in a list."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import date, tzinfo
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from ...common.textsafe import for_terminal
from . import render

__all__ = ["Names", "fetch_blob", "shrink", "post_card", "when", "MAX_PREVIEW_BLOB"]

MAX_PREVIEW_BLOB = 20 * 1024 * 1024  # larger images are not fetched just to be shown


def when(ms: int, tz: tzinfo | None, today: date) -> str:
    """"09:00" today, "Yesterday 09:00", "24 Nov 09:00", "24 Nov 2025" in other years."""
    dt = render.local_dt(ms, tz)
    if dt.date() == today:
        return dt.strftime("%H:%M")
    label = render.day_label(dt.date(), today)
    if label == "Yesterday":
        return f"Yesterday {dt:%H:%M}"
    return dt.strftime("%-d %b %H:%M" if dt.year == today.year else "%-d %b %Y")


class Names:
    """Display names read from each author's signed profile (verified by the core), once."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._names: dict[bytes, str] = {}

    async def load(self, users: list[bytes]) -> None:
        for user in dict.fromkeys(users):
            if user in self._names:
                continue
            try:
                profile = await self.client.social.fetch_profile(user)
            except Exception:  # an invalid record shows no name; the handle still shows
                profile = None
            self._names[user] = profile.display_name if profile is not None else ""

    def get(self, user: bytes) -> str:
        return self._names.get(user, "")


async def fetch_blob(client: Any, ref: Any) -> bytes:
    """A sealed image (attachment, post image, avatar), decrypted and shrunk for showing;
    the core checks its hash before anything is written."""
    if ref.size > MAX_PREVIEW_BLOB:
        raise ValueError(f"{ref.name or 'the image'} is too large to preview "
                         f"({ref.size:,} bytes)")
    with tempfile.TemporaryDirectory(prefix="tenchat-view-") as folder:
        out = Path(folder) / "blob"
        await client.download(ref, out)
        return await shrink(await asyncio.to_thread(out.read_bytes))


async def shrink(data: bytes, side: int = 640) -> bytes:
    """A copy small enough to draw without stalling the UI (decoded off the event loop);
    the bytes unchanged if they are no image (the preview then says so)."""
    from .. import imaging

    try:
        return await asyncio.to_thread(imaging.thumbnail, data, (side, side))
    except (imaging.ImageError, ValueError, OSError):
        return data


def byline(name: str, handle: str | None, stamp: str, extra: str = "") -> Text:
    line = Text()
    if name:  # a display name: the peer's choice
        line.append(for_terminal(name), "bold")
        line.append(" ")
    line.append(f"@{handle}" if handle else "@?", "bold" if not name else "dim")
    line.append(f" · {stamp}", "dim")
    if extra:
        line.append(f" · {extra}", "dim")
    return line


def counts(post: Any) -> Text:
    line = Text(f"💬 {post.comments}", "dim")
    for emoji, n in sorted(post.reactions.items(), key=lambda kv: (-kv[1], kv[0])):
        line.append(f"  {emoji} {n}")
    if post.images:
        n = len(post.images)
        line.append(f"  🖼 {n} image{'s' if n > 1 else ''}", "dim")
    return line


def post_card(post: Any, name: str, tz: tzinfo | None, today: date) -> RenderableType:
    """A post in the feed: byline, its text (Markdown rendered when it looks like it; a
    link shows its real target), then comment and reaction counts."""
    out = byline(name, post.handle, when(post.created_at, tz, today),
                 "followers" if post.audience == "followers" else "")
    if post.text and render.looks_like_markdown(post.text):
        return Group(out, render.body(post.text), counts(post))
    out.append("\n")
    if post.text is None:
        out.append("🔒 followers-only: you hold no key for it", "dim italic")
    elif post.text:
        out.append_text(render.linkify(post.text))
    else:
        out.append("(an image)", "dim")
    out.append("\n")
    out.append_text(counts(post))
    return out
