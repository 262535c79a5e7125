"""New chat: look a handle up on the relay (binding verified) and open the conversation."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ....common.errors import ProtocolError, TenchatError
from .. import render
from ..errors import human_error

__all__ = ["NewChatScreen"]


class NewChatScreen(ModalScreen[bytes | None]):
    """Dismisses with the peer's user id, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("New chat", classes="title")
            yield Input(placeholder="@handle", id="handle")
            yield Static("Enter opens the conversation · Esc cancels", id="error",
                         classes="hint")

    @on(Input.Submitted, "#handle")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._start(event.value.strip())

    @work(exclusive=True)
    async def _start(self, handle: str) -> None:
        try:
            conv = await self.client.start_conversation(handle)
        except (TenchatError, ProtocolError, OSError) as exc:
            self.query_one("#error", Static).update(render.plain(human_error(str(exc)),
                                                                 "bold"))
            return
        self.dismiss(conv.peer)
