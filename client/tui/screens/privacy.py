"""Privacy settings: read receipts, typing indicators, hidden presence, incognito, sealed
sender."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Static

from ....common.errors import TenchatError

__all__ = ["PrivacyScreen", "PRIVACY"]

PRIVACY = [  # (setting, label)
    ("read_receipts", "Send read receipts"),
    ("typing", "Send typing indicators"),
    ("hide_presence", "Hide my presence (appear offline to everyone)"),
    ("incognito", "Incognito: view stories without a view receipt"),
    ("sealed_sender", "Sealed sender: hide who I am from the relay when I can"),
    ("sealed_from_anyone", "Take sealed messages from anyone, not only contacts"),
]


class PrivacyScreen(ModalScreen[None]):
    """Each checkbox saves its setting as soon as it is toggled (Space or Enter)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="privacy"):
            yield Static("Privacy", classes="title")
            for name, label in PRIVACY:
                yield Checkbox(label, id=name)
            yield Static("Space toggles and saves · Tab next · Esc closes", classes="hint")

    async def on_mount(self) -> None:
        for name, _ in PRIVACY:
            box = self.query_one(f"#{name}", Checkbox)
            with box.prevent(Checkbox.Changed):
                box.value = await self.client.setting(name)
        self.query_one(Checkbox).focus()

    @on(Checkbox.Changed)
    async def _changed(self, event: Checkbox.Changed) -> None:
        name = event.checkbox.id or ""
        try:
            await self.client.set_setting(name, event.value)
        except (TenchatError, OSError) as exc:
            self.notify(str(exc), severity="error")
