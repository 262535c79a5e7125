"""Views for the CLI and live UIs: conversations, pages of history, search, what
`inbox` has shown, and the privacy settings.
"""

from __future__ import annotations

import logging

from ..common import frames as f
from ..common.errors import TenchatError
from .base import PRIVACY_DEFAULTS, ClientBase, Conversation, SearchHit, _privacy
from .cache import MessageRow
from .events import (
    ONLINE,
    ConversationChanged,
    Event,
)

__all__ = ['Views']

log = logging.getLogger("tenchat.client")


class Views(ClientBase):
    """Reading the cache for display, and the per-conversation flags."""

    async def unshown(self) -> list[MessageRow]:
        """Received messages no `inbox` has printed yet (see mark_shown)."""
        return await self.cache.messages.unshown()

    async def mark_shown(self, rows: list[MessageRow]) -> None:
        """Record that ``rows`` were printed — only once they were written and flushed, so
        a crash in between prints them again (same id) rather than never."""
        if not rows:
            return
        async with self.cache.transaction():
            await self.cache.messages.mark_shown(rows)

    async def take_unshown(self) -> list[MessageRow]:
        """unshown() marked shown at once (at-most-once: for callers that only look)."""
        rows = await self.unshown()
        await self.mark_shown(rows)
        return rows

    # --- privacy settings ---------------------------------------------------------------

    async def setting(self, name: str) -> bool:
        if name not in PRIVACY_DEFAULTS:
            raise TenchatError(f"unknown setting {name!r}; one of {', '.join(PRIVACY_DEFAULTS)}")
        return _privacy(await self.cache.settings.get("privacy." + name), name)

    async def settings(self) -> dict[str, bool]:
        return {name: await self.setting(name) for name in PRIVACY_DEFAULTS}

    async def set_setting(self, name: str, value: bool) -> None:
        await self.setting(name)  # validates the name
        async with self.cache.transaction():
            await self.cache.settings.set("privacy." + name, int(value))
            await self.tell_devices(name, value)
        await self.send_devices_soon()
        if self._conn is not None and not self._conn.closed.is_set():
            if name == "hide_presence":
                await self._conn.request(f.Privacy, hide_presence=value)
            elif name == "sealed_from_anyone":
                await self.sealed_sender.register(self._conn)

    # --- views for live UIs -------------------------------------------------------------

    async def conversations(self, limit: int | None = None) -> list[Conversation]:
        """Pinned first, then by latest activity; the first ``limit`` (None: all)."""
        online = self.presence.get
        return [
            Conversation(row.peer, row.handle, row.last, row.unread, row.pinned, row.muted,
                         row.blocked, online(row.peer), row.group_name, row.timer,
                         row.verified)
            for row in await self.cache.conversations.all(limit)
        ]

    async def start_conversation(self, peer: str) -> Conversation:
        """Open (or find) the conversation with a handle, so it shows in the list."""
        contact = await self.resolve(peer)
        async with self.cache.transaction():
            await self.cache.conversations.ensure(contact.user)
        if self.connection_state == ONLINE and contact.user not in self.presence:
            await self._rewatch()
        self.emit(ConversationChanged(contact.user))
        found = [conv for conv in await self.conversations() if conv.peer == contact.user]
        return found[0]

    async def page(self, peer: bytes, *, before: int | None = None,
                   limit: int = 50) -> list[MessageRow]:
        """Up to ``limit`` messages older than key ``before`` (default: the latest), oldest
        first. Disappearing messages whose time is up are deleted first."""
        await self.purge()
        return await self.cache.messages.history(peer, limit, before=before)

    async def purge(self) -> None:
        """Delete expired disappearing messages now (they are also purged on every receive)."""
        events: list[Event] = []
        async with self.cache.transaction():
            await self.purge_expired(events)
        for event in events:
            self.emit(event)

    async def around(self, peer: bytes, key: int, limit: int = 50) -> list[MessageRow]:
        """About ``limit`` messages centred on key ``key`` (a search hit in context)."""
        older = await self.cache.messages.history(peer, limit // 2, before=key)
        return older + await self.cache.messages.after(peer, key, limit - len(older))

    async def message_count(self, peer: bytes) -> int:
        return await self.cache.messages.count(peer)

    async def search(self, query: str, *, peer: bytes | None = None,
                     limit: int = 50) -> list[SearchHit]:
        """Full-text search of the local cache (FTS5), newest first."""
        hits = await self.cache.search.messages(query, peer, limit)
        names: dict[bytes, str | None] = {}
        out = []
        for message, snippet in hits:
            if message.peer not in names:
                contact = await self.cache.contacts.get(message.peer)
                names[message.peer] = contact.handle if contact else None
            out.append(SearchHit(message, names[message.peer], snippet))
        return out

    async def set_muted(self, peer: bytes, muted: bool) -> None:
        await self._set_conversation_flag(peer, "muted", muted)

    async def set_pinned(self, peer: bytes, pinned: bool) -> None:
        await self._set_conversation_flag(peer, "pinned", pinned)

    async def _set_conversation_flag(self, peer: bytes, flag: str, value: bool) -> None:
        async with self.cache.transaction():
            await self.cache.conversations.set_flag(peer, flag, value)
            await self.tell_devices(flag, value, peer)
        await self.send_devices_soon()
        self.emit(ConversationChanged(peer))
