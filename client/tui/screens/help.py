"""Help: every key binding, as configured (Settings.keys applied)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import ALL_KEYS, display_key

__all__ = ["HelpScreen"]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss(None)", "Close")]

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__()
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2), expand=True)
        table.add_column(style="bold", max_width=22)
        table.add_column(ratio=1)
        table.add_column(style="dim", no_wrap=True)
        for spec in ALL_KEYS:
            keys = self.keymap.get(spec.id, spec.key)
            table.add_row(display_key(keys), spec.description, spec.scope)
        with VerticalScroll(classes="dialog wide", id="help"):
            yield Static("Keys", classes="title")
            yield Static(Text("Esc, q or F1 closes this · ↑↓ PgUp PgDn scroll · "
                              "/help in the composer lists the slash commands", "bold"),
                         classes="hint", id="help-close")
            yield Static(table, id="keys")
            yield Static(Text("Change keys in HOME/config.toml under [keys], e.g. "
                              'search = "ctrl+f,f3". Esc closes.', "dim"), classes="hint")
