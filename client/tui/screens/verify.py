"""Verify: the safety number to compare with the peer in person or on a call."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ....common.errors import TenchatError
from .. import render

__all__ = ["VerifyScreen"]


class VerifyScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,enter", "dismiss(None)", "Close")]

    def __init__(self, client: Any, handle: str) -> None:
        super().__init__()
        self.client = client
        self.handle = handle
        self.safety_number = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="verify"):
            yield Static(render.plain(f"Safety number with @{self.handle}"), classes="title")
            yield Static("…", id="number")
            yield Static(render.plain(
                "Compare it with the one @" + self.handle + " sees, in person or on a call. If "
                "they match, nobody — not even the relay — sits between you."), classes="hint")
            yield Static("Esc closes", classes="hint")

    def on_mount(self) -> None:
        self._load()

    @work
    async def _load(self) -> None:
        try:
            _, number = await self.client.safety_number(self.handle)
        except TenchatError as exc:
            self.query_one("#number", Static).update(render.plain(str(exc)))
            return
        self.safety_number = number
        groups = number.split()
        self.query_one("#number", Static).update(
            " ".join(groups[:6]) + "\n" + " ".join(groups[6:]))
