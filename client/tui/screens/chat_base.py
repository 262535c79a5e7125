"""What the chat screen's parts (chat.py, chat_media.py, chat_actions.py) share: its
state, and the methods one part calls in another (declared here for the type checker)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.worker import Worker

if TYPE_CHECKING:
    from ..app import TenchatApp

__all__ = ["ChatBase"]


class ChatBase(Screen[None]):
    """The chat screen's state."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.peer: bytes | None = None  # the open conversation
        self.conversations: dict[bytes, Any] = {}
        self._unsubscribe: Any = None
        self._typing_sent = 0.0  # loop time we last told the peer we are typing
        self._typing_idle: Timer | None = None
        # conversation -> who is typing there (the peer, or group members) -> expiry
        self._peer_typing_expiry: dict[bytes, dict[bytes, Timer]] = {}
        self._refresh_pending = False
        # Set once on_mount has opened the first conversation and focused the composer:
        # the app holds keys typed during start-up until then.
        self.ready = asyncio.Event()
        self._ready_focus: Widget | None = None
        self.reply_to: bytes | None = None  # the message the composer answers
        self.editing: bytes | None = None  # our message the composer rewrites
        self.group_info: Any = None  # GroupInfo of the open group
        self.thumbnails: dict[bytes, Any] = {}  # blob hash → thumbnail cells ([]: none)

    @property
    def tenchat(self) -> TenchatApp:
        return self.app  # type: ignore[return-value]

    if TYPE_CHECKING:  # defined in chat.py
        async def refresh_conversations(self) -> None: ...
        async def open_conversation(self, peer: bytes, *, focus_key: int | None = None,
                                    focus_id: bytes | None = None) -> None: ...
        def _schedule_refresh(self) -> None: ...
        def _run_action(self, request: Any) -> Worker[None]: ...  # a @work method
        def _cancel_compose_mode(self) -> bool: ...
