"""Unlock: the keystore exists but no passphrase was given (TENCHAT_PASSPHRASE, a file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from ....common.errors import TenchatError
from .. import render

__all__ = ["UnlockScreen"]


class UnlockScreen(Screen[Any]):
    """Asks for the passphrase; dismisses with the unlocked client."""

    def __init__(self, home: Path, relay_url: str | None, error: str = "") -> None:
        super().__init__()
        self.home = home
        self.relay_url = relay_url
        self.first_error = error

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="form", classes="form"):
            yield Static("tenchat is locked", classes="title")
            yield Static("Enter the passphrase that protects your keys on this machine.",
                         classes="hint")
            yield Input(password=True, placeholder="passphrase", id="passphrase")
            yield Static(render.plain(self.first_error), id="error", classes="error")

    def on_mount(self) -> None:
        self.query_one("#passphrase", Input).focus()

    @on(Input.Submitted, "#passphrase")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value:
            self.query_one("#error", Static).update("Unlocking…")
            self._unlock(event.value)

    @work(exclusive=True)
    async def _unlock(self, passphrase: str) -> None:
        from ...keystore import WrongPassphrase
        from ...service import Client

        try:
            client = await Client.unlock(self.home, self.relay_url, passphrase)
        except WrongPassphrase:
            self.query_one("#error", Static).update("Wrong passphrase, try again.")
            self.query_one("#passphrase", Input).value = ""
            return
        except TenchatError as exc:
            self.query_one("#error", Static).update(render.plain(str(exc)))
            return
        self.dismiss(client)
