"""First run: no identity in this home yet — choose a handle, a relay and a passphrase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static

from ....common.errors import ProtocolError, TenchatError
from .. import render

__all__ = ["FirstRunScreen"]


class FirstRunScreen(Screen[Any]):
    """Creates the identity; dismisses with the unlocked client."""

    def __init__(self, home: Path, relay_url: str) -> None:
        super().__init__()
        self.home = home
        self.relay_url = relay_url

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="form", classes="form"):
            yield Static("Welcome to tenchat", classes="title")
            yield Static("No identity here yet. Pick a handle, the relay that carries your "
                         "messages, and a passphrase that protects your keys on this "
                         "machine.", classes="hint")
            yield Label("Handle")
            yield Input(placeholder="e.g. alice", id="handle")
            yield Label("Relay")
            yield Input(self.relay_url, id="relay")
            yield Label("Passphrase")
            yield Input(password=True, id="passphrase")
            yield Label("Passphrase again")
            yield Input(password=True, id="confirm")
            yield Static("", id="error", classes="error")
            yield Button("Create identity", id="create", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#handle", Input).focus()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        if event.input.id == "confirm":
            self._create()
        else:
            self.focus_next()

    @on(Button.Pressed, "#create")
    def _create(self) -> None:
        handle = self.query_one("#handle", Input).value.strip().removeprefix("@")
        relay = self.query_one("#relay", Input).value.strip()
        passphrase = self.query_one("#passphrase", Input).value
        error = self.query_one("#error", Static)
        if not handle or not relay:
            error.update("A handle and a relay are needed.")
        elif not passphrase:
            error.update("Choose a passphrase.")
        elif passphrase != self.query_one("#confirm", Input).value:
            error.update("The passphrases differ.")
        else:
            error.update("Creating your identity…")
            self.query_one("#create", Button).disabled = True
            self._run(handle, relay, passphrase)

    @work(exclusive=True)
    async def _run(self, handle: str, relay: str, passphrase: str) -> None:
        from ...service import Client

        try:
            client = await Client.create(self.home, relay, handle, passphrase)
        except (TenchatError, ProtocolError, OSError) as exc:
            self.query_one("#error", Static).update(render.plain(f"Could not create it: {exc}"))
            self.query_one("#create", Button).disabled = False
            return
        self.dismiss(client)
