"""The chat screen's decorations of shown messages: reactions, "seen by", quoted
replies, polls, stickers, attachments and their image thumbnails (fetched in workers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from textual import work
from textual.css.query import NoMatches

from ....common.errors import TenchatError
from ...conv import is_group
from .. import render
from ..widgets.message_log import MessageLog
from .chat_base import ChatBase

__all__ = ["ChatMedia", "thumbnail_cells", "sticker_cells"]

log = logging.getLogger("tenchat.tui")

STICKER_COLUMNS = 16  # a sticker in the message log: this many cells across, 8 rows at most
THUMB_COLUMNS = 24  # an image attachment's thumbnail: this many cells across, 8 rows at most
THUMB_MAX_BYTES = 5 * 1024 * 1024  # larger images show their 📎 line only (o opens them)


class ChatMedia(ChatBase):
    async def _decorate(self, peer: bytes, rows: list[Any]) -> None:
        """Reactions, "seen by" and replied-to messages of ``rows`` (just shown)."""
        if not rows:
            return
        cache = self.client.cache
        reactions = await cache.messages.reactions(peer, [r.id for r in rows])
        seen = {}
        if is_group(peer):
            for row in rows:
                if row.outgoing:
                    seen[row.id] = await cache.messages.seen_by(peer, row.id)
        log_widget = self.query_one(MessageLog)
        quoted = {}
        for row in rows:
            if row.reply_to and row.reply_to not in quoted and log_widget.row(row.reply_to) \
                    is None:
                target = await cache.messages.get(peer, row.reply_to)
                if target is not None:
                    quoted[row.reply_to] = target
        ids = [r.id for r in rows]
        polls = await self.client.polls.views(peer, ids)
        stickers = await self.client.stickers.refs(peer, ids)
        cells = {}
        for msg_id, sticker in stickers.items():
            cached = await self.client.stickers.cached(sticker)
            if cached is not None:
                cells[msg_id] = await asyncio.to_thread(sticker_cells, cached[1])
            else:
                self._fetch_sticker(peer, msg_id, sticker)
        if peer == self.peer:
            log_widget.decorate(reactions=reactions, seen=seen, quoted=quoted, polls=polls,
                                stickers=cells)
        await self._decorate_attachments(peer, ids)

    async def _decorate_attachments(self, peer: bytes, ids: list[bytes]) -> None:
        """📎 name and size of each attachment in ``ids``; image thumbnails (fetched once,
        hash-checked by the core, kept for the session)."""
        from ...service import attachment_text
        from .social_actions import IMAGE_TYPES

        refs = await self.client.attachments(peer, ids)
        if not refs or peer != self.peer:
            return
        shown = {}
        for msg_id, ref in refs.items():
            label = render.attachment_label(ref.name, ref.size, ref.mime)
            cells = self.thumbnails.get(ref.hash)
            if cells is None and ref.mime in IMAGE_TYPES and ref.size <= THUMB_MAX_BYTES:
                self._fetch_thumbnail(peer, msg_id, ref, label)
            shown[msg_id] = (label, attachment_text(ref, ""), cells or None)
        with contextlib.suppress(NoMatches):  # the app may be closing meanwhile
            self.query_one(MessageLog).decorate(attachments=shown)

    @work(group="thumbnails", exit_on_error=False)
    async def _fetch_thumbnail(self, peer: bytes, msg_id: bytes, ref: Any, label: str) -> None:
        from ...service import attachment_text
        from ..social_view import fetch_blob

        try:
            data = await fetch_blob(self.client, ref)
        except (TenchatError, OSError, ValueError) as exc:
            log.info("thumbnail not shown: %s", exc)
            self.thumbnails[ref.hash] = []
            return
        cells = await asyncio.to_thread(thumbnail_cells, data)
        self.thumbnails[ref.hash] = cells
        if peer == self.peer and cells:
            with contextlib.suppress(NoMatches):  # the app may be closing meanwhile
                self.query_one(MessageLog).decorate(
                    attachments={msg_id: (label, attachment_text(ref, ""), cells)})

    @work(group="stickers", exit_on_error=False)
    async def _fetch_sticker(self, peer: bytes, msg_id: bytes, sticker: Any) -> None:
        """A received sticker not fetched yet: fetch and verify it, then show it."""
        try:
            _entry, data = await self.client.stickers.image(sticker)
        except (TenchatError, OSError) as exc:
            log.info("sticker not shown: %s", exc)
            return
        cells = await asyncio.to_thread(sticker_cells, data)
        if peer == self.peer:
            self.query_one(MessageLog).decorate(stickers={msg_id: cells})


def thumbnail_cells(data: bytes) -> Any:
    """An image attachment's thumbnail for the message log; [] if unreadable."""
    from ...imaging import ImageError, preview_cells

    try:
        return preview_cells(data, THUMB_COLUMNS, max_rows=8)
    except ImageError:
        return []


def sticker_cells(data: bytes) -> Any:
    """A sticker's picture for the message log (imaging.preview_cells); [] if unreadable."""
    from ...imaging import ImageError, preview_cells

    try:
        return preview_cells(data, STICKER_COLUMNS, max_rows=8)
    except ImageError:
        return []
