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

    def __init__(self, client: Any, handle: str, pending: bytes | None = None) -> None:
        """``pending``: the handle's pending new key (a key change): its number is shown,
        and marking it verified accepts it (security review H1/M4)."""
        super().__init__()
        self.client = client
        self.handle = handle
        self.pending = pending
        self.safety_number = ""
        self.verified: bool | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="verify"):
            yield Static(render.plain(f"Safety number with @{self.handle}"), classes="title")
            yield Static("…", id="number")
            yield Static(render.plain(
                "Compare it with the one @" + self.handle + " sees, in person or on a call. If "
                "they match, nobody — not even the relay — sits between you."), classes="hint")
            yield Static("", id="verified-state")
            yield Static("m mark verified / unmark · Esc closes", id="verify-keys",
                         classes="hint")

    def on_mount(self) -> None:
        self._load()

    @work
    async def _load(self) -> None:
        try:
            if self.pending is not None:
                from ....common.crypto.safety import safety_number

                contact = await self.client.cache.contacts.get(self.pending)
                number = safety_number(self.client.user, self.pending)
            else:
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
            if self.pending is not None and verified:
                _, pending = await self.client.pending_key(self.handle)
                if pending is None or pending.user != self.pending:
                    raise TenchatError("this key change is no longer pending")
                await self.client.accept_key(self.handle)  # the key whose number was shown
                self.pending = None
            contact = await self.client.set_verified(self.handle, verified)
        except TenchatError as exc:
            self.notify(str(exc), severity="error")
            return
        self._show(contact.verified)
        self.notify(f"@{self.handle} marked verified" if contact.verified
                    else f"@{self.handle} no longer marked verified")

    def action_close(self) -> None:
        self.dismiss(self.verified)
