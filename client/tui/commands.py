"""The command palette provider: every action, and every conversation to jump to."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .keys import ALL_KEYS, display_key

__all__ = ["ChatCommands"]


class ChatCommands(Provider):
    """Actions from the key table (with their keys) plus "Open @handle" per conversation."""

    def _commands(self) -> list[tuple[str, Any, str]]:
        from .screens.chat import ChatScreen

        app: Any = self.app
        keymap = app.keymap_settings
        out: list[tuple[str, Any, str]] = []
        chat = next((s for s in app.screen_stack if isinstance(s, ChatScreen)), None)
        for spec in ALL_KEYS:
            if not spec.palette:
                continue
            key = display_key(keymap.get(spec.id, spec.key))
            if spec.scope == "chat":
                if chat is None:
                    continue
                out.append((spec.description, partial(chat.run_action, spec.id), key))
            elif spec.scope in ("messages", "selected message") and chat is not None:
                out.append((spec.description,
                            partial(chat.query_one("#messages").run_action, spec.id), key))
            else:
                out.append((spec.description, partial(app.run_action, spec.id), key))
        if chat is not None:
            for conv in chat.conversations.values():
                if conv.handle or conv.is_group:
                    out.append((f"Open {conv.title}",
                                partial(chat.open_conversation, conv.peer), "conversation"))
        return out

    async def discover(self) -> Hits:
        for text, callback, key in self._commands():
            yield DiscoveryHit(text, callback, help=key)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, key in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=key)
