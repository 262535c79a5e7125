"""Verify: the safety number to compare with the peer in person or on a call, and the mark
that says we did (``m`` marks or unmarks; the header and contacts then show ✔)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ....common.errors import TenchatError
from .. import render

__all__ = ["VerifyScreen"]


class VerifyScreen(ModalScreen[bool | None]):
    """Dismisses with whether the contact is marked verified (None if unknown)."""

    BINDINGS = [Binding("escape,q,enter", "close", "Close"),
                Binding("m", "toggle_verified", "Mark verified / unmark")]

    def __init__(self, client: Any, handle: str) -> None:
        super().__init__()
        self.client = client
        self.handle = handle
        self.safety_number = ""
        self.verified: bool | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="verify"):
            yield Static(f"Safety number with @{self.handle}", classes="title")
            yield Static("…", id="number")
            yield Static("Compare it with the one @" + self.handle + " sees, in person or on "
                         "a call. If they match, nobody — not even the relay — sits between "
                         "you.", classes="hint")
            yield Static("", id="verified-state")
            yield Static("m mark verified / unmark · Esc closes", id="verify-keys",
                         classes="hint")

    def on_mount(self) -> None:
        self._load()

    @work
    async def _load(self) -> None:
        try:
            contact, number = await self.client.safety_number(self.handle)
        except TenchatError as exc:
            self.query_one("#number", Static).update(render.plain(str(exc)))
            return
        self.safety_number = number
        groups = number.split()
        self.query_one("#number", Static).update(
            " ".join(groups[:6]) + "\n" + " ".join(groups[6:]))
        self._show(contact.verified)

    def _show(self, verified: bool) -> None:
        self.verified = verified
        state = self.query_one("#verified-state", Static)
        if verified:
            state.update(Text("✔ verified: you marked this safety number as compared",
                              "bold green"))
        else:
            state.update(Text("not verified — press m once the numbers match", "dim"))

    def action_toggle_verified(self) -> None:
        if self.verified is not None:
            self._mark(not self.verified)

    @work(exclusive=True, group="verify-mark")
    async def _mark(self, verified: bool) -> None:
        try:
            contact = await self.client.set_verified(self.handle, verified)
        except TenchatError as exc:
            self.notify(str(exc), severity="error")
            return
        self._show(contact.verified)
        self.notify(f"@{self.handle} marked verified" if contact.verified
                    else f"@{self.handle} no longer marked verified")

    def action_close(self) -> None:
        self.dismiss(self.verified)
