"""The conversation list: one entry per peer or group (#) with presence, unread count,
preview and marks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ....common.textsafe import for_name
from .. import render

__all__ = ["ConversationList"]


class ConversationList(OptionList):
    """Conversations, pinned first then by latest activity (the core's order)."""

    class Opened(Message):
        """The user chose a conversation (Enter or click)."""

        def __init__(self, peer: bytes) -> None:
            super().__init__()
            self.peer = peer

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.conversations: list[Any] = []
        self.active: bytes | None = None  # the open conversation
        self.typing: set[bytes] = set()

    def update_conversations(self, conversations: Sequence[Any]) -> None:
        highlighted = self._highlighted_peer()
        self.conversations = list(conversations)
        self._rebuild(highlighted)

    def set_active(self, peer: bytes | None) -> None:
        self.active = peer
        self._rebuild(peer)

    def set_typing(self, peer: bytes, active: bool) -> None:
        (self.typing.add if active else self.typing.discard)(peer)
        self._rebuild(self._highlighted_peer())

    def peers(self) -> list[bytes]:
        """The conversations in the order shown."""
        return [c.peer for c in self.conversations]

    def neighbour(self, peer: bytes | None, step: int) -> bytes | None:
        peers = [c.peer for c in self.conversations]
        if not peers:
            return None
        if peer not in peers:
            return peers[0]
        return peers[(peers.index(peer) + step) % len(peers)]

    def _highlighted_peer(self) -> bytes | None:
        if self.highlighted is None or self.highlighted >= self.option_count:
            return self.active
        option_id = self.get_option_at_index(self.highlighted).id
        return bytes.fromhex(option_id) if option_id else None

    def _rebuild(self, highlight: bytes | None) -> None:
        width = max(self.scrollable_content_region.width - 2, 12)
        options = [Option(self._prompt(conv, width), id=conv.peer.hex())
                   for conv in self.conversations]
        self.clear_options()
        self.add_options(options)
        if not options:
            return
        peers = [c.peer for c in self.conversations]
        self.highlighted = peers.index(highlight) if highlight in peers else 0

    def _prompt(self, conv: Any, width: int) -> Text:
        if conv.is_group:
            name = for_name(conv.group_name or conv.peer.hex()[:12])
            dot = ("#", "bold")
        else:
            name = f"@{conv.handle}" if conv.handle else conv.peer.hex()[:12]
            dot = ("●", "green") if conv.online else ("○", "dim")
        marks = ("⚑" if conv.pinned else "") + ("🔇" if conv.muted else "") + \
            ("⊘" if conv.blocked else "")
        unread = f" {conv.unread} " if conv.unread else ""
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(dot[0] + " ", dot[1])
        room = width - 2 - len(unread) - (cell_len(marks) + 1 if marks else 0)
        name = render.steady(name)  # a group's name may hold emoji
        shown = name if cell_len(name) <= room else set_cell_size(name, max(room, 0))
        head.append(shown, "bold" if conv.unread else "")
        pad = width - 2 - cell_len(shown) - len(unread) - (cell_len(marks) + 1 if marks else 0)
        head.append(" " * max(pad, 1))
        if marks:
            head.append(marks + " ", "dim")
        if unread:
            head.append(unread, "reverse bold")
        if conv.peer in self.typing:
            line = "typing…"
            style = "italic"
        elif conv.last is not None:
            who = "you: " if conv.last.outgoing else ""
            line = who + ("message deleted" if conv.last.deleted else conv.last.text)
            style = "dim"
        else:
            line, style = "no messages yet", "dim italic"
        # steady: the divider is drawn right after this line, so no emoji of unsure width
        tail = Text("  " + render.preview(render.steady(line), width - 2), style=style,
                    no_wrap=True,
                    overflow="ellipsis")
        return Text("\n").join([head, tail])

    def on_resize(self) -> None:
        self._rebuild(self._highlighted_peer())

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Opened(bytes.fromhex(event.option.id)))
